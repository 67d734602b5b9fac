"""The interface every training method implements.

A method is a small strategy object. The engine (:mod:`gnnmask.train`) owns the
loop; a method only decides

* how the freshly built model is prepared (e.g. masks attached, weights frozen),
* which tensors the optimiser updates,
* what happens around each optimisation step (sparsity schedules, pruning,
  regrowth, ...), and
* what it reports per epoch and exports at the end.

Adding a method never requires touching the engine: subclass :class:`Method`,
give it a unique ``name`` and register it with :func:`register_method`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import nn


class Method:
    """Base class of all training methods (dense training is the identity case).

    Attributes:
        name: the registry key, used on the command line (``--method NAME``).
        defaults: values this method gives to unset (``None``) fields of the
            run configuration, e.g. ``{"dropout": 0.0, "bias": False}``.
    """

    name: ClassVar[str] = "base"
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, config):
        self.config = config

    # -- set-up ---------------------------------------------------------------
    def prepare(self, model: nn.Module, data) -> nn.Module:
        """Return the model to train (may modify ``model`` in place)."""
        return model

    def parameters(self, model: nn.Module) -> Iterable[torch.Tensor] | list[dict]:
        """Tensors (or optimiser parameter groups) the optimiser updates."""
        return [p for p in model.parameters() if p.requires_grad]

    # -- around each step -----------------------------------------------------
    def on_epoch_start(self, epoch: int, model: nn.Module) -> None:
        """Called before the training step of ``epoch`` (0-based)."""

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        """An extra term added to the training loss (e.g. an L0 penalty)."""
        return None

    def after_backward(self, epoch: int, model: nn.Module) -> None:
        """Called after ``loss.backward()``, before the optimiser step."""

    def after_step(self, epoch: int, model: nn.Module, optimizer) -> None:
        """Called after the optimiser step."""

    def selectable(self, epoch: int) -> bool:
        """Whether the model after ``epoch`` may be chosen as the final model
        (e.g. only once a sparsity schedule has reached its target)."""
        return True

    # -- reporting ------------------------------------------------------------
    def epoch_info(self, model: nn.Module) -> dict[str, Any]:
        """Extra per-epoch values for the run record (e.g. current sparsity)."""
        return {}

    def export(self, model: nn.Module) -> dict[str, Any]:
        """Final method-specific summary for the run record."""
        return {}

    def finalize(self, model: nn.Module, path_prefix: str | None = None) -> None:
        """Called once after training with the best model restored."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator adding a :class:`Method` subclass to the registry."""
    if cls.name in METHODS and METHODS[cls.name] is not cls:
        raise ValueError(f"method name {cls.name!r} registered twice")
    METHODS[cls.name] = cls
    return cls
