"""The straight-through mask, as a ``torch.nn.utils.parametrize`` parametrization.

A masked tensor ``w`` is replaced, wherever its module reads it, by

.. math::  W = c \\cdot w \\odot m,

with ``m`` a boolean mask of ``w``'s shape and ``c`` a scale (one per tensor,
or one per output unit). Two uses:

* **score masks over frozen weights** (untrained tickets,
  :func:`~gnnmask.masks.mask_model`): ``w`` is frozen and random, the mask is
  chosen from trainable real-valued *scores* ``s`` by a rule
  (:mod:`gnnmask.masks.rules`), and the scores learn through the
  straight-through estimator (Bengio et al. 2013; Ramanujan et al. 2020):
  the binarisation is treated as the identity in the backward pass,

  .. math::  \\frac{\\partial L}{\\partial s} := \\frac{\\partial L}{\\partial m}
             = c \\, \\frac{\\partial L}{\\partial W} \\odot w ;

* **fixed masks over trainable weights** (sparse training,
  :func:`~gnnmask.masks.sparsify`): ``w`` trains,
  :math:`\\partial L/\\partial w = c\\,\\partial L/\\partial W \\odot m`, so pruned
  entries receive exactly zero gradient; the mask changes only when a
  method prunes or regrows entries.

``c`` restores the variance a layer's output loses when a fraction of its
weights is removed (removing a fraction ``s`` at random shrinks it by
``1 - s``); :data:`SCALES`:

``none``   ``c = 1``.
``keep``   ``c = 1/sqrt(1 - s)`` for the target sparsity ``s``, the same for
           every tensor.
``layer``  ``c_l = 1/sqrt(d_l)`` with ``d_l`` the fraction of tensor ``l``
           its mask actually keeps (a global threshold can leave some layers
           far sparser than ``s``).
``unit``   ``c_lj = sqrt(n_l / k_lj)`` for output unit ``j`` (row ``j`` of
           ``[out, in, ...]``), with ``k_lj`` its kept inputs of ``n_l``: the
           variance each unit would have with all its inputs (units with no
           input kept get 1).

**Masks change only when someone refreshes them.** :meth:`MaskGroup.refresh`
computes every mask from the current scores (one pooled threshold for the
``global`` rule) and the scale ``c`` from the current sparsity; a forward
pass only applies the stored masks. Refresh after every change of the scores
or of the sparsity: gnnmask's methods do it after each optimiser step; in
your own loop, call :func:`~gnnmask.masks.refresh_on_step` once (it
registers ``group.refresh`` as a step post-hook of your optimiser), or call
``get_mask_group(model).refresh()`` yourself after updating scores by hand
(under ``no_grad``, from another library's optimiser, after
``load_state_dict`` of scores alone). Masks and ``c`` are buffers of the
parametrization, so ``state_dict``/``load_state_dict`` carry them exactly.

Stochastic rules (Bernoulli, hard-concrete) sample a fresh mask from the
scores in every *training* forward pass; their stored mask is the
deterministic one used in evaluation.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from gnnmask.errors import UserError
from gnnmask.masks.rules import MaskRule, resolve_rule

SCALES = ("auto", "none", "keep", "layer", "unit")


def check_sparsity(sparsity) -> float:
    """Return ``sparsity`` as a float, or raise :class:`UserError` unless 0 <= s < 1."""
    try:
        s = float(sparsity)
    except (TypeError, ValueError):
        s = math.nan
    if isinstance(sparsity, bool) or not 0.0 <= s < 1.0:
        raise UserError(f"sparsity {sparsity!r} is out of range; allowed: 0 <= sparsity < 1")
    return s


class _StraightThrough(torch.autograd.Function):
    """``W = c w ⊙ m`` for a boolean ``m``; ``dL/dw = c (dL/dW ⊙ m)`` and the
    straight-through ``dL/ds = c (dL/dW ⊙ w)`` for whichever of ``w`` and
    ``s`` requires a gradient. The mask is applied as a product with the
    boolean tensor: on the CPU ``torch.where`` branches per entry and is
    several times slower on a random mask."""

    @staticmethod
    def forward(ctx, weight: Tensor, scores: Tensor | None, mask: Tensor, scale: Tensor):
        ctx.save_for_backward(weight, mask, scale)
        return torch.mul(weight, mask).mul_(scale)

    @staticmethod
    def backward(ctx, grad: Tensor):
        weight, mask, scale = ctx.saved_tensors
        grad_w = torch.mul(grad, mask).mul_(scale) if ctx.needs_input_grad[0] else None
        grad_s = torch.mul(grad, weight).mul_(scale) if ctx.needs_input_grad[1] else None
        return grad_w, grad_s, None, None


class MaskParametrization(nn.Module):
    """The parametrization ``w -> c w ⊙ m`` of one tensor.

    State: ``scores`` (a trainable parameter; ``None`` for masks over
    trainable weights), and the buffers ``mask`` (boolean, ``w``'s shape) and
    ``scale`` (``c``: 0-d, or ``[out, 1, ...]`` for ``scale="unit"``), both
    set by :meth:`MaskGroup.refresh`
    or by a method. The rule and the sparsity are shared through the
    :class:`MaskGroup` (a plain attribute, not a sub-module).
    """

    def __init__(self, name: str, weight: Tensor, scores: Tensor | None, group: MaskGroup):
        super().__init__()
        self.name, self.group = name, group
        self.scores = None if scores is None else nn.Parameter(scores)
        self.register_buffer("mask", torch.ones_like(weight, dtype=torch.bool))
        shape = (weight.shape[0],) + (1,) * (weight.dim() - 1) \
            if group.scale == "unit" and weight.dim() > 1 else ()
        self.register_buffer("scale", torch.ones(shape, dtype=weight.dtype, device=weight.device))
        #: ``dL/dW`` of the effective tensor, summed over the training passes
        #: since it was last read, while ``group.track_dense_grad`` is on.
        self.dense_grad: Tensor | None = None
        self.bypass = False  # see gnnmask.masks.api (state_dict of PyG's Linear)
        #: ``scores._version`` when the mask was last computed from them (a
        #: training forward after an in-place change of the scores warns once).
        self.refreshed_version: int | None = None

    def forward(self, weight: Tensor) -> Tensor:
        if self.bypass:
            return weight
        rule = self.group.rule
        if self.training and rule.stochastic:
            return rule.sample(weight, self.scores, self.scale)
        if (self.training and not rule.fixed and self.refreshed_version is not None
                and self.scores._version != self.refreshed_version):
            self.group.warn_stale(self.name)
        out = _StraightThrough.apply(weight, rule.ranked(self.scores), self.mask, self.scale)
        if self.group.track_dense_grad and out.requires_grad:
            out.register_hook(self._add_dense_grad)
        return out

    def _add_dense_grad(self, grad: Tensor) -> None:
        self.dense_grad = grad.detach().clone() if self.dense_grad is None \
            else self.dense_grad + grad.detach()

    def extra_repr(self) -> str:
        kind = "scores" if self.scores is not None else "trainable weight"
        shape = tuple(self.mask.shape)
        return f"{self.name!r}, rule={self.group.rule.name!r}, {kind}, shape={shape}"


class MaskGroup:
    """Everything the masks of one model share: the rule, the current
    sparsity, the scale mode and the recipe they were attached with.
    Members named in ``unscaled`` keep ``c = 1`` whatever the scale mode.

    ``members`` maps each masked parameter's dotted name to its
    :class:`MaskParametrization`; ``targets`` to ``(module, attribute)``.
    """

    def __init__(self, rule, sparsity: float, scale: str, recipe: dict,
                 unscaled: Iterable[str] = ()):
        if scale not in SCALES[1:]:
            raise UserError(f"unknown scale {scale!r}; allowed: {', '.join(SCALES[1:])}")
        self.rule: MaskRule = resolve_rule(rule)
        self.scale = scale
        self.recipe = recipe
        self.members: dict[str, MaskParametrization] = {}
        self.unscaled: frozenset[str] = frozenset(unscaled)
        self.targets: dict[str, tuple[nn.Module, str]] = {}
        self.requires_grad: dict[str, bool] = {}  # flags to restore when unmasking
        #: While True, training passes record each member's ``dL/dW``
        #: (:meth:`dense_grads`), e.g. for RigL's regrowth.
        self.track_dense_grad = False
        self._sparsity = check_sparsity(sparsity)
        self._unfixed: MaskRule | None = None
        self._warned_stale = False

    def warn_stale(self, name: str) -> None:
        """Warn, once per group, that a training forward uses masks computed
        from scores that have changed since (a loop without a refresh)."""
        if not self._warned_stale:
            self._warned_stale = True
            warnings.warn(f"the scores of {name!r} changed since its mask was computed: the "
                          "forward uses the old mask; call get_mask_group(model).refresh() "
                          "after each optimiser step, or register "
                          "refresh_on_step(optimizer, model) once", stacklevel=3)

    @property
    def sparsity(self) -> float:
        """The target sparsity of the current masks (set by :meth:`refresh`)."""
        return self._sparsity

    @property
    def factor(self) -> float:
        """The global scale: ``1/sqrt(1 - sparsity)`` for ``scale="keep"``, else 1."""
        return 1.0 / math.sqrt(1.0 - self._sparsity) if self.scale == "keep" else 1.0

    def _scale(self, member: MaskParametrization) -> Tensor | float:
        """``c`` of one member, from the target sparsity or its own mask."""
        if member.name in self.unscaled:
            return 1.0
        if self.scale in ("none", "keep"):
            return self.factor
        mask = member.mask
        if self.scale == "layer":
            kept = int(mask.sum())
            return math.sqrt(mask.numel() / kept) if kept else 1.0
        rows = mask.reshape(mask.shape[0], -1) if mask.dim() > 1 else mask.view(1, -1)
        kept = rows.sum(1).to(member.scale.dtype)
        c = torch.where(kept > 0, torch.sqrt(rows.shape[1] / kept.clamp(min=1)), 1.0)
        return c.view(member.scale.shape)

    @torch.no_grad()
    def refresh(self, sparsity: float | None = None) -> None:
        """Recompute every mask from the current scores, at ``sparsity`` if
        given (else the current one), and set the scales ``c``. The ``fixed``
        rule keeps its masks and only updates ``c``."""
        if sparsity is not None:
            self._sparsity = check_sparsity(sparsity)
        members = list(self.members.values())
        if not self.rule.fixed:
            scores = [m.scores for m in members]
            if self.rule.pooled:
                keeps = self.rule.keep_pooled(scores, self._sparsity)
            else:
                keeps = [self.rule.keep(s, self._sparsity) for s in scores]
            for m, keep in zip(members, keeps):
                m.mask.copy_(keep)
                m.refreshed_version = m.scores._version
        for m in members:
            c = self._scale(m)
            if isinstance(c, Tensor):
                m.scale.copy_(c)
            else:
                m.scale.fill_(c)

    @torch.no_grad()
    def set_masks(self, masks: dict[str, Tensor]) -> None:
        """Overwrite the masks of the named members (boolean tensors of their shapes)."""
        for name, keep in masks.items():
            if name not in self.members:
                raise UserError(f"no masked tensor named {name!r}; allowed: "
                                f"{', '.join(list(self.members)[:8])}")
            mask = self.members[name].mask
            keep = torch.as_tensor(keep)
            if keep.shape != mask.shape:
                raise UserError(f"mask for {name!r} has shape {tuple(keep.shape)}; "
                                f"allowed: {tuple(mask.shape)}")
            mask.copy_(keep)

    def fix(self, masks: dict[str, Tensor] | None = None) -> None:
        """Switch to the ``fixed`` rule: keep the current masks (or set
        ``masks``, which must name every member) until :meth:`unfix`."""
        if masks is not None:
            missing = sorted(set(self.members) - set(masks))
            if missing:
                raise UserError(f"fixed masks missing for {missing}")
            self.set_masks(masks)
        if not self.rule.fixed:
            self._unfixed, self.rule = self.rule, resolve_rule("fixed")

    def unfix(self) -> None:
        """Return to the rule used before :meth:`fix` and refresh."""
        if self._unfixed is not None:
            self.rule, self._unfixed = self._unfixed, None
            self.refresh()

    def masks(self) -> dict[str, Tensor]:
        """``{name: boolean mask}``: the stored (evaluation) masks, not copies."""
        return {name: m.mask for name, m in self.members.items()}

    def achieved_sparsity(self) -> dict:
        """``{"overall": float, "per_tensor": {name: float}}``: fractions of
        entries the stored masks remove."""
        counts = {name: (m.numel(), int(torch.count_nonzero(m))) for name, m in
                  self.masks().items()}
        total = sum(n for n, _ in counts.values())
        removed = sum(n - kept for n, kept in counts.values())
        return {"overall": removed / total if total else 0.0,
                "per_tensor": {k: (n - kept) / n if n else 0.0 for k, (n, kept) in counts.items()}}

    def penalty(self) -> Tensor | None:
        """The rule's regulariser of this group's scores (e.g. hard-concrete's
        L0 penalty), or ``None``."""
        return self.rule.penalty([m.scores for m in self.members.values()])

    def dense_grads(self, clear: bool = True) -> dict[str, Tensor | None]:
        """``{name: dL/dW}`` of the effective tensors, summed over the
        training passes since the last clear (needs :attr:`track_dense_grad`)."""
        grads = {name: m.dense_grad for name, m in self.members.items()}
        if clear:
            for m in self.members.values():
                m.dense_grad = None
        return grads

    def __repr__(self) -> str:
        return (f"MaskGroup(rule={self.rule.name!r}, sparsity={self._sparsity:g}, "
                f"scale={self.scale!r}, tensors={len(self.members)})")
