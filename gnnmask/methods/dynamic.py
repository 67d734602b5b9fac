"""Dynamic sparse training: the mask changes during training, at constant sparsity.

Every method starts from a fixed random mask (``density_dist``, ERK by
default). ``rigl`` and ``set-rigl`` (RigL's code base, Evci et al. 2020),
every ``update_interval`` steps until ``update_end`` of training, replace in
every layer a fraction ``alpha_t`` of its active weights
(:func:`topology_update`): the ``n = floor(alpha_t * active)`` active weights
of smallest ``|w|`` are dropped and ``n`` entries among those inactive after
the drop are grown, at zero, with zeroed optimiser moments; a dropped entry
grown again keeps its value. ``alpha_t = alpha / 2 (1 + cos(pi t / T_end))``
(cosine decay), ``alpha = 0.3``.

``rigl``      Evci et al. (ICML 2020): grow the entries of largest
              ``|dL/dW|``, the dense gradient of the effective weight at this
              step.
``set-rigl``  SET as RigL's code re-runs it: the schedule above, grown
              uniformly at random over the inactive entries.
``set``       SET as Mocanu et al. (Nature Communications 2018) define it
              (:func:`signed_topology_update`): after every epoch but the
              last, in every layer, the fraction ``zeta = 0.3`` of the
              positive active weights closest to zero and the same fraction of
              the negative ones are dropped (the two signs apart, a constant
              fraction, to the end of training), and as many inactive entries,
              chosen uniformly at random, grow with random values. Their code
              draws new weights from its own small random initialiser;
              gnnmask draws them from ``N(0, 2 / fan_in)`` (He et al.).

Each layer's count, hence the sparsity, stays exact under every method.

Intervals count optimiser steps. Full-batch training takes one step per
epoch, so the default ``update_interval`` of 10 gives 15 updates in 200
epochs (RigL's 100 steps are meant for runs of tens of thousands of
minibatch steps).

In-time over-parameterisation (Liu et al., ICML 2021): ``R_s``, the fraction
of the masked weights that have been active at any time, is recorded every
epoch (``itop_rate``) and at the end. ``--itop`` applies the paper's recipe
for a high ``R_s``: updates through the whole run (``update_end = 1``), an
initial drop fraction of 0.5 cosine-annealed to 0.005, and an interval
giving 50 updates (``max(1, steps // 50)``); explicit options override it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from gnnmask.masks import get_mask_group, prune_and_regrow
from gnnmask.masks.init import generator, kaiming_std
from gnnmask.masks.sparse import zero_optimizer_state
from gnnmask.methods.base import Option, register_method
from gnnmask.methods.sparse import SparseMethod

#: ITOP's end value of the drop fraction (Liu et al. 2021, their code's eta_min).
ITOP_FINAL_FRACTION = 0.005


@torch.no_grad()
def topology_update(model: nn.Module, fraction: float, grow_scores: dict[str, torch.Tensor],
                    optimizer=None) -> dict[str, int]:
    """Per masked tensor, drop the ``floor(fraction * active)`` active entries
    of smallest ``|w|`` and grow as many of the largest ``grow_scores`` among
    the entries inactive after the drop (new weights 0, optimiser state
    zeroed). Returns ``{name: number replaced}``."""
    group = get_mask_group(model)
    changed = {}
    for name, member in group.members.items():
        mask = member.mask.reshape(-1)
        n = int(fraction * int(mask.sum()))
        if n == 0:
            changed[name] = 0
            continue
        module, attr = group.targets[name]
        w = module.parametrizations[attr].original.reshape(-1)
        drop_scores = torch.where(mask, w.abs(), torch.inf)
        drop = torch.topk(drop_scores, n, largest=False).indices
        after = mask.clone()
        after[drop] = False
        grow_scores_l = torch.where(after, -torch.inf, grow_scores[name].reshape(-1).float())
        grow = torch.topk(grow_scores_l, n).indices
        regrown = mask[grow]  # dropped now, grown back: keeps its value
        prune_and_regrow(model, name, drop[~torch.isin(drop, grow)], grow[~regrown],
                         optimizer)
        changed[name] = int((~regrown).sum())
    return changed


@torch.no_grad()
def signed_topology_update(model: nn.Module, zeta: float, gen: torch.Generator,
                           optimizer=None) -> dict[str, int]:
    """Mocanu et al.'s SET step: per masked tensor, drop the ``floor(zeta * P)``
    positive active entries closest to zero and the ``floor(zeta * N)``
    negative ones (``P``, ``N``: active entries of each sign; exact zeros
    count as positive), then grow as many entries chosen uniformly at random
    among those inactive after the drop, with values drawn from
    ``N(0, 2 / fan_in)`` (optimiser state zeroed). Returns ``{name: number
    replaced}``."""
    group = get_mask_group(model)
    changed = {}
    for name, member in group.members.items():
        mask = member.mask.reshape(-1)
        module, attr = group.targets[name]
        original = module.parametrizations[attr].original
        w = original.reshape(-1)
        drops = []
        for side in (mask & (w >= 0), mask & (w < 0)):
            n = int(zeta * int(side.sum()))
            if n:
                drops.append(torch.topk(torch.where(side, w.abs(), torch.inf), n,
                                        largest=False).indices)
        if not drops:
            changed[name] = 0
            continue
        drop = torch.cat(drops)
        after = mask.clone()
        after[drop] = False
        scores = torch.rand(mask.shape, generator=gen).to(mask.device)
        grow = torch.topk(torch.where(after, -torch.inf, scores), drop.numel()).indices
        regrown = mask[grow]  # dropped and drawn again: a new value all the same
        prune_and_regrow(model, name, drop[~torch.isin(drop, grow)], grow[~regrown],
                         optimizer)
        values = torch.randn(grow.shape, generator=gen) * kaiming_std(original.shape)
        w[grow] = values.to(w.device, w.dtype)
        if optimizer is not None:
            where = torch.zeros_like(mask)
            where[grow] = True
            zero_optimizer_state(optimizer, original, where.view(original.shape))
        changed[name] = int(grow.numel())
    return changed


class DynamicSparse(SparseMethod):
    """Shared logic of SET and RigL: schedule, updates, ``R_s``."""

    reads = ("sparsity", "density_dist", "weight_init", "itop")
    defaults = {**SparseMethod.defaults, "density_dist": "erk", "itop": False}
    options = {
        "update_interval": Option("optimiser steps between topology updates (default 10; "
                                  "full-batch training takes one step per epoch)",
                                  "positive_int"),
        "drop_fraction": Option("initial fraction alpha of each layer's active weights "
                                "replaced, cosine-decayed (default 0.3; 0.5 with --itop)",
                                "fraction"),
        "update_end": Option("fraction of training after which the topology stays fixed "
                             "(default 0.75; 1.0 with --itop)", "fraction"),
    }

    def __init__(self, config, context=None):
        super().__init__(config, context)
        self.itop = bool(config.itop)
        self.interval, self.alpha, self.end, self.final = self.schedule_settings()
        self.gen = generator(config.seed, stream=3)
        self.updates: list[dict[str, Any]] = []

    def schedule_settings(self) -> tuple[int | None, float, float, float]:
        """``(update_interval, drop fraction, update_end, final fraction)``
        from the options (``None`` interval: set from the steps, see
        :meth:`prepare`)."""
        itop = self.itop
        return (self.extra("update_interval"),
                float(self.extra("drop_fraction", 0.5 if itop else 0.3)),
                float(self.extra("update_end", 1.0 if itop else 0.75)),
                ITOP_FINAL_FRACTION if itop else 0.0)

    def prepare(self, model: nn.Module, data) -> nn.Module:
        model = super().prepare(model, data)
        group = get_mask_group(model)
        self.fired = {n: m.clone() for n, m in group.masks().items()}
        self.steps_per_epoch = self.context.steps_per_epoch  # the steps this process takes
        if self.interval is None:
            self.interval = max(1, self.total_steps // 50) if self.itop else 10
        self.step = 0
        group.track_dense_grad = self.updates_at(1)
        return model

    def fraction(self, step: int) -> float:
        """``alpha_t`` at optimiser step ``step`` (cosine decay to the end value)."""
        t_end = self.end * self.total_steps
        return self.final + (self.alpha - self.final) / 2 * (1 + math.cos(math.pi * step / t_end))

    def updates_at(self, step: int) -> bool:
        """Whether the topology changes after optimiser step ``step`` (1-based)."""
        return step % self.interval == 0 and step < self.end * self.total_steps

    @property
    def total_steps(self) -> int:
        """Optimiser steps of the run (``epochs`` times the steps per epoch this
        process takes, :class:`~gnnmask.methods.Context`)."""
        return self.config.epochs * self.steps_per_epoch

    def grow_scores(self, model: nn.Module) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def update(self, model: nn.Module, fraction: float, optimizer) -> dict[str, int]:
        """One topology update replacing ``fraction`` of each layer's active
        weights; ``{name: number replaced}``."""
        return topology_update(model, fraction, self.grow_scores(model), optimizer)

    def after_step(self, epoch: int, model: nn.Module, optimizer) -> None:
        self.step += 1
        group = get_mask_group(model)
        if self.updates_at(self.step):
            alpha = self.fraction(self.step)
            changed = self.update(model, alpha, optimizer)
            group.dense_grads()  # read or not, cleared
            for name, mask in group.masks().items():
                self.fired[name] |= mask
            self.updates.append({"step": self.step, "fraction": alpha, "replaced": changed})
        group.track_dense_grad = self.updates_at(self.step + 1)  # for the next step

    def itop_rate(self) -> float:
        """``R_s``: the fraction of masked weights ever active."""
        total = sum(m.numel() for m in self.fired.values())
        return sum(int(m.sum()) for m in self.fired.values()) / total

    def epoch_info(self, model: nn.Module) -> dict[str, Any]:
        return {**super().epoch_info(model), "itop_rate": self.itop_rate()}

    def export(self, model: nn.Module) -> dict[str, Any]:
        return {**super().export(model), "itop_rate": self.itop_rate(),
                "itop_rate_per_layer": {n: int(m.sum()) / m.numel()
                                        for n, m in self.fired.items()},
                "update_interval": self.interval, "drop_fraction": self.alpha,
                "update_end": self.end, "updates": self.updates}


@register_method
class SETRigL(DynamicSparse):
    """SET as RigL's code re-runs it (Evci et al. 2020): cosine-decayed drop of
    the smallest |w|, random regrowth at zero, stopping at 75% of training."""

    name = "set-rigl"

    def grow_scores(self, model):
        group = get_mask_group(model)
        return {n: torch.rand(m.mask.shape, generator=self.gen).to(m.mask.device)
                for n, m in group.members.items()}


@register_method
class RigL(DynamicSparse):
    """RigL (Evci et al. 2020): drop the smallest magnitudes, regrow the largest gradients."""

    name = "rigl"

    def grow_scores(self, model):
        grads = get_mask_group(model).dense_grads(clear=False)
        missing = [n for n, g in grads.items() if g is None]
        if missing:
            raise RuntimeError(f"no dense gradient recorded for {missing[:3]}")
        return {n: g.abs() for n, g in grads.items()}


@register_method
class SET(DynamicSparse):
    """SET (Mocanu et al. 2018): after every epoch, drop the fraction zeta of
    positive and of negative weights closest to zero, regrow at random with
    random values."""

    name = "set"
    reads = ("sparsity", "density_dist", "weight_init")
    defaults = {k: v for k, v in DynamicSparse.defaults.items() if k != "itop"}
    options = {"zeta": Option("fraction of each sign's active weights replaced after every "
                              "epoch (constant)", "rate", 0.3)}

    def schedule_settings(self) -> tuple[int | None, float, float, float]:
        zeta = float(self.extra("zeta"))
        return None, zeta, 1.0, zeta  # the interval is one epoch (prepare)

    def prepare(self, model: nn.Module, data) -> nn.Module:
        model = super().prepare(model, data)
        self.interval = self.steps_per_epoch  # once per epoch
        get_mask_group(model).track_dense_grad = False  # no gradient is read
        return model

    def fraction(self, step: int) -> float:
        return self.alpha

    def updates_at(self, step: int) -> bool:
        """After every epoch but the last."""
        return step % self.interval == 0 and step < self.total_steps

    def update(self, model: nn.Module, fraction: float, optimizer) -> dict[str, int]:
        return signed_topology_update(model, fraction, self.gen, optimizer)

    def after_step(self, epoch: int, model: nn.Module, optimizer) -> None:
        super().after_step(epoch, model, optimizer)
        get_mask_group(model).track_dense_grad = False

    def export(self, model: nn.Module) -> dict[str, Any]:
        out = super().export(model)
        for key in ("drop_fraction", "update_end"):
            out.pop(key)
        return {**out, "zeta": self.alpha}
