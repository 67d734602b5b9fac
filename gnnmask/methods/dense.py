"""Dense training: every weight trained, nothing masked (the reference method)."""

from gnnmask.methods.base import Method, register_method


@register_method
class Dense(Method):
    """Ordinary training of all parameters (Kipf & Welling 2017 defaults)."""

    name = "dense"
    defaults = {"dropout": 0.5, "bias": True, "weight_decay": 5e-4}
