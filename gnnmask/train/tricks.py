"""Training tricks for sparse networks, each on its own flag (the ToST recipe).

"Training Your Sparse Neural Network Better with Any Mask" (ToST, Jaiswal et
al., ICML 2022) trains a fixed sparse mask (random, SNIP, GraSP, SynFlow,
lottery tickets, ...) better with components that change training, not the
final network; here each is a :class:`~gnnmask.train.RunConfig` field, so an
ablation is one sweep:

``ghost_soft = K``    ghost soft neurons: for epoch ``e < K`` every ReLU of
                      the model computes ``(1 - l) SiLU(x) + l ReLU(x)`` with
                      ``l = e / K``, a smooth activation annealed linearly to
                      ReLU; from epoch ``K`` on the model's ReLU is restored.
``ghost_skip = K``    ghost skip connections: for epoch ``e < K`` every hidden
                      layer adds ``b h_(l-1)`` with ``b = 1 - e / K`` (an
                      identity skip phased out linearly); from epoch ``K`` on
                      the model is the plain one.
``label_smoothing``   (already a field) the paper uses 0.1.
``rescale_init = N``  layer-wise rescaled initialisation: the paper learns one
                      scale per tensor with GradInit (Zhu et al. 2021); here,
                      more simply, each weight tensor is rescaled, layer after
                      layer in forward order, until the output of its module
                      on the training graph has unit standard deviation
                      (LSUV, Mishkin & Matas, ICLR 2016), with at most ``N``
                      forward passes per tensor (the module that owns the
                      tensor, or its nearest ancestor that is called: a GCN
                      layer fed sparse features applies its weight without
                      calling ``lin``). On row-normalised bag-of-words
                      features the first layer's output is tiny, so unit
                      standard deviation multiplies its weights by hundreds
                      (measured in docs/RESULTS.md). Scaling keeps zeros at zero,
                      so the mask is kept. Only for methods that train
                      weights.

The released ToST code has no annealing schedule for the two ghost
components; the linear schedules above are this project's choice. After
epoch ``max(K)`` the model equals the plain one on the same weights.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gnnmask.errors import UserError

#: A tensor is rescaled until its module's output std is within this of 1.
RESCALE_TOLERANCE = 0.1


class GhostActivation(nn.Module):
    """``(1 - l) SiLU(x) + l ReLU(x)``; ``l = 1`` is exactly ReLU."""

    def __init__(self, level: float = 0.0):
        super().__init__()
        self.level = level

    def forward(self, x: Tensor) -> Tensor:
        if self.level >= 1.0:
            return F.relu(x)
        return (1.0 - self.level) * F.silu(x) + self.level * F.relu(x)

    def extra_repr(self) -> str:
        return f"level={self.level:g}"


def check_tricks(config, method_cls) -> None:
    """One-line errors for tricks the configuration cannot use."""
    for name in ("ghost_soft", "ghost_skip", "rescale_init"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UserError(f"--{name.replace('_', '-')} {value!r} is invalid; allowed: 0 (off) "
                            "or a positive integer")
    if config.ghost_soft and config.activation != "relu":
        raise UserError(f"--ghost-soft anneals to ReLU; --activation is {config.activation!r}; "
                        "allowed: relu")
    if config.ghost_skip and config.layers < 3:
        raise UserError(f"--ghost-skip adds skips between hidden layers of equal width; "
                        f"--layers {config.layers} has none; allowed: --layers 3 or more")
    if config.rescale_init and not method_cls.trains_weights:
        raise UserError(f"--rescale-init learns weight scales; method {method_cls.name!r} keeps "
                        "its weights frozen (tickets are rebuilt from their seed)")


class Tricks:
    """The tricks of one run, applied by the engine around the method."""

    def __init__(self, config):
        self.config = config
        self.ghost = GhostActivation()

    @property
    def active(self) -> bool:
        c = self.config
        return bool(c.ghost_soft or c.ghost_skip or c.rescale_init)

    def on_epoch_start(self, epoch: int, model: nn.Module) -> None:
        c = self.config
        # through the model's declared interface (DeepGNN.set_activation/set_ghost_skip)
        if c.ghost_soft and epoch <= c.ghost_soft:
            if epoch < c.ghost_soft:
                self.ghost.level = epoch / c.ghost_soft
                model.set_activation(self.ghost)
            else:
                model.set_activation(nn.ReLU())
        if c.ghost_skip:
            model.set_ghost_skip(max(0.0, 1.0 - epoch / c.ghost_skip))

    @torch.no_grad()
    def rescale(self, model: nn.Module, method, data) -> dict[str, float]:
        """Rescale every trainable weight tensor until its module's output has
        unit standard deviation (at most ``rescale_init`` passes each);
        returns the factor applied to each."""
        passes = self.config.rescale_init
        if not passes:
            return {}
        training = model.training
        model.eval()  # no dropout
        factors = {}
        for name, p in model.named_parameters():
            if not p.requires_grad or p.dim() < 2:
                continue
            owner = name.split(".parametrizations.")[0] if ".parametrizations." in name \
                else name.rpartition(".")[0]
            seen: list[float] = []
            factor = 1.0
            handle = None
            try:
                # The module whose output is measured: the tensor's owner, or the
                # nearest ancestor that is called (a GCN layer may apply its
                # ``lin`` weight without calling ``lin``, e.g. on sparse input).
                path = owner.split(".") if owner else []
                while True:
                    seen.clear()
                    handle = model.get_submodule(".".join(path)).register_forward_hook(
                        lambda m, args, out, seen=seen: seen.append(float(out.std())))
                    model(*method.inputs(data))
                    if seen or not path:
                        break
                    handle.remove()
                    path = path[:-1]
                for _ in range(passes):
                    std = seen[0] if seen else 1.0
                    if not std > 0 or abs(std - 1.0) < RESCALE_TOLERANCE:
                        break
                    p.div_(std)
                    factor /= std
                    seen.clear()
                    model(*method.inputs(data))
            finally:
                if handle is not None:
                    handle.remove()
            factors[name] = factor
        model.train(training)
        return factors

    def export(self) -> dict[str, Any]:
        c = self.config
        return {k: getattr(c, k) for k in ("ghost_soft", "ghost_skip", "rescale_init")
                if getattr(c, k)}
