"""Score masks as ``torch.nn.utils.parametrize`` parametrizations.

A masked tensor ``w`` (frozen, ``requires_grad=False``) is replaced by the
effective tensor

.. math::  W = c \\cdot w \\odot m(s),

where ``s`` are trainable *scores* of ``w``'s shape, ``m(s)`` a binary (or, for
hard-concrete, ``[0, 1]``-valued) mask and ``c`` an optional constant scale
(``scale="keep"``: :math:`c = 1/\\sqrt{1 - \\text{sparsity}}`, which keeps the
variance of each layer's output unchanged when a fraction ``sparsity`` of its
weights is removed at random; ``scale="none"``: ``c = 1``).

Mask rules (:data:`RULES`), all driven by one knob, ``sparsity`` = the fraction
of weights removed, ``0 <= sparsity < 1``:

``global``
    Untrained GNN tickets (Huang et al. 2022, arXiv:2211.15335): one threshold
    over the raw scores pooled across every masked tensor of the model; exactly
    ``k = round(sparsity * total)`` entries are removed overall (the smallest
    scores; ties at the threshold removed in pooled order, see
    :mod:`gnnmask.masks._select`). Computed once per score update, not once per
    tensor: :class:`MaskGroup` caches it under the scores' version counters.
``topk``
    edge-popup (Ramanujan et al. 2020, arXiv:1911.13299): per tensor, keep the
    ``round((1 - sparsity) * n)`` entries of largest ``|s|``.
``bernoulli``
    Supermasks (Zhou et al. 2019, arXiv:1905.01067): training samples
    ``m ~ Bernoulli(sigmoid(s))``; evaluation is deterministic, ``m = [s > 0]``
    (``sigmoid(s) > 1/2``). The sparsity is *learnt*; the ``sparsity`` knob
    only sets ``scale="keep"``'s factor.
``hard-concrete``
    L0 regularisation (Louizos et al. 2018, arXiv:1712.01312): training samples
    stretched hard-concrete gates ``z = clamp(sigmoid((log u - log(1-u) + s) /
    beta) (zeta - gamma) + gamma, 0, 1)``, ``u ~ U(0, 1)``, with ``beta = 2/3``,
    ``gamma = -0.1``, ``zeta = 1.1`` and ``s = log alpha``; evaluation uses the
    deterministic gate binarised at 1/2, which is ``m = [s > 0]``, so masks are
    binary everywhere (tickets store bits). The sparsity is learnt under
    :meth:`MaskGroup.l0_penalty`.

Gradients. ``global``/``topk`` (and every rule in eval mode) use the
straight-through estimator: the gradient w.r.t. the scores is the gradient
w.r.t. the mask, ``dL/ds = dL/dm = c * (dL/dW ⊙ w)``; ``topk``, which ranks
``|s|``, passes it to ``|s|`` and on through the absolute value,
``dL/ds = sign(s) * dL/dm`` (as edge-popup's reference code does; without
the sign, negative scores move the wrong way and training stalls: 0.39 vs
0.97 test accuracy on the default CSBM graph, 4 layers, 100 epochs). ``bernoulli`` passes it
straight through the sample to ``p = sigmoid(s)``, then through the sigmoid:
``dL/ds = c * (dL/dW ⊙ w) * p(1 - p)``. ``hard-concrete`` uses the exact
reparameterisation gradient of the gate (Louizos et al.).

Cost (32-layer, 448-wide GCN on Cora, 6.6M masked weights, 2 CPU cores, a
dense training step ~0.8 s), per training step: the ``global`` threshold
(two comparison passes over the scores in a band around the predicted
threshold, see :mod:`gnnmask.masks._select`) ~9 ms, ~13 ms while a schedule
ramps the sparsity; the masked weights ~2 ms once ``c`` is constant (only
the flipped entries are rewritten, see :meth:`ScoreMask.masked_weight`),
~7 ms while ``c`` changes; the straight-through products ~4 ms; preparing
all weights at the start of the forward pass (:meth:`MaskGroup.begin_pass`)
a few ms of Python. ``scripts/bench_mask_overhead.py`` puts a whole ugt step
at 0.97-1.07 times a dense one (median 1.02). Memory: per masked weight, its score (4
bytes) and optimiser state, the boolean mask (1 byte) and, for ``global``,
the kept masked weight (4 bytes), the previous pooled mask (1 byte, until
:attr:`MaskGroup.flips` is read) and two reused 1-byte work buffers.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from gnnmask.errors import UserError
from gnnmask.masks._select import (
    keep_mask,
    padded_length,
    pooled_keep_masks,
    sparse_nonzero,
    split_pooled,
)

RULES = ("global", "topk", "bernoulli", "hard-concrete")
STOCHASTIC = ("bernoulli", "hard-concrete")
SCALES = ("auto", "none", "keep")

#: ``global`` threshold hint (see :meth:`MaskGroup._predict_threshold`): bounds
#: ``HINT_WIDTH`` prediction errors wide on each side; the error estimate
#: keeps at least ``ERR_DECAY`` times its last value per step. Measured on a 32-layer,
#: 448-wide GCN on Cora (ramps to 50% and 90% over 26 and 60 epochs):
#: decay 0.5 missed on 9-14% of steps (a miss costs two more passes, ~15
#: ms), 0.8 on 3-4%, at about the same median band (8K-25K of 6.6M scores).
HINT_WIDTH = 2.0
ERR_DECAY = 0.8

#: Hard-concrete constants (Louizos et al. 2018, section 4).
BETA, GAMMA, ZETA = 2.0 / 3.0, -0.1, 1.1


def check_sparsity(sparsity) -> float:
    """Return ``sparsity`` as a float, or raise :class:`UserError` unless 0 <= s < 1."""
    try:
        s = float(sparsity)
    except (TypeError, ValueError):
        s = math.nan
    if isinstance(sparsity, bool) or not 0.0 <= s < 1.0:
        raise UserError(f"sparsity {sparsity!r} is out of range; allowed: 0 <= sparsity < 1")
    return s


def padded_bool_buffer(buf: Tensor | None, n: int, device) -> Tensor:
    """``buf`` if it is a boolean buffer of ``padded_length(n)`` entries on
    ``device``, else a fresh zeroed one. Work buffers are reused across steps:
    a fresh one each step costs page faults on CPU. Entries past ``n`` stay
    ``False`` unless a caller writes them."""
    padded = padded_length(n)
    if buf is None or (buf.numel(), buf.device) != (padded, torch.device(device)):
        buf = torch.zeros(padded, dtype=torch.bool, device=device)
    return buf


def round_half_up(x: float) -> int:
    """``round`` without banker's rounding (``2.5 -> 3``)."""
    return int(math.floor(x + 0.5))


def apply_mask(weight: Tensor, keep: Tensor, c: float, out: Tensor | None = None) -> Tensor:
    """``c * w ⊙ m`` for a boolean mask ``m``: one product with the boolean
    tensor (plus an in-place scale), no float mask; into ``out`` if given.
    Every path (training, fixed masks, unmasking) uses it, so all produce
    bit-identical weights. Removed entries are zeros with the sign of ``w``
    (``-0.0`` for negative weights; equal to ``0.0`` in every comparison and
    in every product and sum that matters).

    Why a product and not ``torch.where``: on the CPU ``where`` branches per
    entry, and a random mask defeats the branch predictor: over the 6.6M
    weights of a 32-layer, 448-wide GCN it took ~13 ms at 50% sparsity
    against ~3.5 ms at 4%, while the product takes ~4 ms at any sparsity."""
    out = torch.mul(weight, keep, out=out)
    return out.mul_(c) if c != 1.0 else out


class _MaskedWeight(torch.autograd.Function):
    """``W = c w ⊙ m`` for a boolean ``m`` fixed during this pass, with the
    straight-through estimator ``dL/ds := dL/dm = c (dL/dW ⊙ w)`` (and
    ``dL/dw = c (dL/dW ⊙ m)`` should ``w`` require grad).

    ``c`` is applied after the product, in place, on a tensor the product
    just wrote (still in cache), instead of caching ``c w``: a schedule
    changes ``c`` every epoch, and rewriting a cached ``c w`` cost a full
    pass over all weights per step (~4 ms for 6.6M weights on two cores)."""

    @staticmethod
    def forward(ctx, weight, scores, keep, c, masked=None):
        ctx.save_for_backward(weight, keep)
        ctx.c = c
        if masked is not None:  # maintained by ScoreMask.masked_weight
            return masked.view_as(masked)
        return apply_mask(weight, keep, c)

    @staticmethod
    def backward(ctx, grad):
        weight, keep = ctx.saved_tensors
        grad_w = apply_mask(grad, keep, ctx.c) if ctx.needs_input_grad[0] else None
        grad_s = torch.mul(grad, weight)
        if ctx.c != 1.0:
            grad_s.mul_(ctx.c)
        return grad_w, grad_s, None, None, None


class _BernoulliWeight(torch.autograd.Function):
    """``W = c w ⊙ m``, ``m ~ Bernoulli(sigmoid(s))``; straight through the sample,
    exact through the sigmoid: ``dL/ds = c (dL/dW ⊙ w) p (1 - p)``."""

    @staticmethod
    def forward(ctx, weight, scores, c):
        p = torch.sigmoid(scores)
        m = torch.bernoulli(p)
        if c != 1.0:
            m.mul_(c)
        ctx.save_for_backward(weight, p, m)
        ctx.c = c
        return weight * m

    @staticmethod
    def backward(ctx, grad):
        weight, p, m = ctx.saved_tensors
        grad_w = grad * m if ctx.needs_input_grad[0] else None
        grad_s = grad * weight * (p * (1.0 - p))
        if ctx.c != 1.0:
            grad_s.mul_(ctx.c)
        return grad_w, grad_s, None


def hard_concrete_gate(log_alpha: Tensor) -> Tensor:
    """A reparameterised sample of the stretched hard-concrete gate."""
    u = torch.rand_like(log_alpha).clamp_(1e-6, 1.0 - 1e-6)
    s = torch.sigmoid((u.log() - torch.log1p(-u) + log_alpha) / BETA)
    return (s * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)


#: Counts ``step()`` calls of every ``torch.optim`` optimiser in the process.
#: PyTorch's fused optimisers (``fused=True``) update parameters in place
#: without bumping their version counters, so the mask caches also key on this.
_OPTIMIZER_STEPS = [0]


def _count_optimizer_step(optimizer, args, kwargs) -> None:
    _OPTIMIZER_STEPS[0] += 1


register_optimizer_step_post_hook(_count_optimizer_step)


def _stamp(t: Tensor) -> tuple:
    """Identifies a tensor's current contents: in-place updates (optimiser
    steps, ``load_state_dict``) bump ``_version``; moves change the pointer."""
    return (t._version, t.data_ptr(), t.device, t.dtype)


class ScoreMask(nn.Module):
    """The parametrization ``w -> c * w ⊙ m(scores)`` of one tensor.

    Holds the trainable ``scores`` and, in the fixed state (tickets), a
    non-persistent boolean buffer ``fixed``. The mask itself comes from the
    shared :class:`MaskGroup` (a plain attribute, not a sub-module).
    """

    def __init__(self, name: str, scores: Tensor, group: MaskGroup):
        super().__init__()
        self.name = name
        self.scores = nn.Parameter(scores)
        self.register_buffer("fixed", None, persistent=False)
        self.group = group
        self.bypass = False  # set while the owning module writes its state_dict
        self._masked: tuple[tuple, int, Tensor] | None = None  # see masked_weight

    def forward(self, weight: Tensor) -> Tensor:
        g = self.group
        if self.bypass:
            return weight
        prepared = g._pass
        if prepared is not None:  # see MaskGroup.begin_pass
            hit = prepared.get(self.name)
            if hit is not None and hit[0] is weight:
                return hit[1]
        return self.effective(weight)

    def effective(self, weight: Tensor) -> Tensor:
        """The effective tensor ``c w ⊙ m(scores)`` computed now (what
        :meth:`forward` returns outside a prepared pass)."""
        g = self.group
        if g.fixed:
            return apply_mask(weight, g.mask(self), g.factor)
        if self.training and g.rule == "bernoulli":
            return _BernoulliWeight.apply(weight, self.scores, g.factor)
        if self.training and g.rule == "hard-concrete":
            z = hard_concrete_gate(self.scores)
            return weight * (z * g.factor if g.factor != 1.0 else z)
        # topk ranks |s|: the straight-through gradient reaches |s|, then s
        # through abs (edge-popup's reference implementation does the same).
        ranked = self.scores.abs() if g.rule == "topk" else self.scores
        keep = g.mask(self)
        masked = None
        if g.rule == "global" and not weight.requires_grad:
            masked = self.masked_weight(weight, keep)
        return _MaskedWeight.apply(weight, ranked, keep, g.factor, masked)

    def masked_weight(self, weight: Tensor, keep: Tensor) -> Tensor:
        """``c w ⊙ keep``, kept between steps: when the mask changed by one
        update of the ``global`` rule (see :attr:`MaskGroup.flips`) and ``c``
        and ``w`` did not, only the flipped entries are rewritten (a few
        thousand of 6.6M on a 32-layer ticket) instead of the whole tensor.
        Values are bit-identical to :func:`apply_mask`. The buffer is updated
        in place (also when all of it is rewritten), so a graph kept from
        before a score update (``retain_graph``) refuses a second backward
        pass instead of using the new mask."""
        g = self.group
        key = (g.factor, *_stamp(weight))
        cached = self._masked
        same = cached is not None and cached[0] == key
        if same and cached[1] == g.generation:  # hot path: no autograd context
            return cached[2]
        flips = g.flips.get(self.name) if same and cached[1] == g.generation - 1 else None
        with torch.no_grad(), torch.inference_mode(False):
            if flips is None:  # rewrite all, in place where the buffer fits
                buf = None if cached is None else cached[2]
                if buf is not None and (buf.shape, buf.dtype, buf.device) != (
                        weight.shape, weight.dtype, weight.device):
                    buf = None
                buf = apply_mask(weight.detach(), keep, g.factor, out=buf)
            else:
                buf = cached[2]
                if flips.numel():
                    buf.view(-1)[flips] = apply_mask(weight.detach().view(-1)[flips],
                                                     keep.view(-1)[flips], g.factor)
        self._masked = (key, g.generation, buf)
        return buf

    def extra_repr(self) -> str:
        return f"{self.name!r}, rule={self.group.rule!r}, shape={tuple(self.scores.shape)}"


class _ThresholdState(NamedTuple):
    """The last ``global`` selection, for predicting the next threshold."""

    threshold: float
    k: int
    density: float | None  # see gnnmask.masks._select.Selection
    err: float | None  # error of the last prediction (decayed), None before one


class MaskGroup:
    """Everything the masks of one model share: rule, current sparsity, scale,
    the init recipe, and a cache of the current masks.

    The cache is keyed on the current sparsity, the ``(version, pointer)``
    stamps of the score tensors and the process-wide count of optimiser steps
    (fused optimisers do not bump version counters), so a mask (and the ``global``
    threshold, pooled over all tensors) is computed once after each score
    update, however many times the weights are read and whichever sub-module
    is called. ``recomputations`` counts the computations (a ``global``
    threshold counts once for all tensors).

    Scores changed through ``.data`` bypass the version counter: call
    :meth:`invalidate` after such writes.
    """

    def __init__(self, rule: str, sparsity: float, scale: str, recipe: dict):
        self.rule = rule
        self.scale = scale
        self.recipe = recipe
        self.members: dict[str, ScoreMask] = {}
        self.targets: dict[str, tuple[nn.Module, str]] = {}
        self.requires_grad: dict[str, bool] = {}
        self.fixed = False
        self.recomputations = 0
        self._sparsity = check_sparsity(sparsity)
        self._cache: dict[str, tuple[tuple, Tensor]] = {}
        self._global_key: tuple | None = None
        self._scratch: Tensor | None = None
        self._threshold: _ThresholdState | None = None  # the last ``global`` selection
        #: Bumped at every ``global`` mask computation (see :attr:`flips`).
        self.generation = 0
        self._flips: dict[str, Tensor] | None = {}  # None: not computed yet
        self._pooled: Tensor | None = None  # the latest pooled global mask
        self._previous: Tensor | None = None  # the one before, until flips are found
        self._flip_buf: Tensor | None = None
        #: ``{name: (weight, effective tensor)}`` during a prepared forward pass
        self._pass: dict[str, tuple[Tensor, Tensor]] | None = None
        self._depth = 0

    # -- the knob -------------------------------------------------------------
    @property
    def sparsity(self) -> float:
        """The current target sparsity (settable; a schedule sets it each epoch)."""
        return self._sparsity

    @sparsity.setter
    def sparsity(self, value) -> None:
        self._sparsity = check_sparsity(value)

    @property
    def factor(self) -> float:
        """The weight scale ``c``: ``1/sqrt(1 - sparsity)`` for ``scale="keep"``, else 1."""
        return 1.0 / math.sqrt(1.0 - self._sparsity) if self.scale == "keep" else 1.0

    # -- masks ----------------------------------------------------------------
    def invalidate(self) -> None:
        """Drop cached masks (needed only after writing scores through ``.data``)."""
        self._cache.clear()
        self._global_key = None
        self._scratch = None
        self._threshold = None
        self.generation += 1
        self._flips = {}
        self._pooled = self._previous = self._flip_buf = None

    @property
    def flips(self) -> dict[str, Tensor]:
        """Per member, the (flat, sorted) positions whose ``global`` mask bit
        changed in the latest computation (:attr:`generation`); an empty dict
        when unknown. Found on first use: while a schedule changes ``c``
        every epoch, the masked weights are rewritten whole and never ask
        (during a ramp to 90% sparsity ~230K bits flip per step; finding them
        costs a few ms)."""
        if self._flips is None:
            self._flips = self._find_flips()
        return self._flips

    def mask(self, member: ScoreMask) -> Tensor:
        """The deterministic boolean mask of ``member`` (cached; do not modify).

        A cache hit costs a few microseconds (the model reads every masked
        weight in each forward pass); only a miss enters ``no_grad``."""
        if self.rule == "global" and not self.fixed:
            members = list(self.members.values())
            # versions and pointers only (a move or cast reallocates);
            # ``_parameters`` skips nn.Module.__getattr__ on this hot path
            scores = [m._parameters["scores"] for m in members]
            key = (self._sparsity, _OPTIMIZER_STEPS[0], *[t._version for t in scores],
                   *[t.data_ptr() for t in scores])
            if key != self._global_key:
                with torch.no_grad(), torch.inference_mode(False):
                    self._recompute_global(members, key)
            return self._cache[member.name][1]
        source = member.fixed if self.fixed else member.scores
        key = (self._sparsity, self.fixed, _stamp(source),
               None if self.fixed else _OPTIMIZER_STEPS[0])
        hit = self._cache.get(member.name)
        if hit is None or hit[0] != key:
            with torch.no_grad(), torch.inference_mode(False):
                hit = self._cache[member.name] = (key, self._keep(member))
            self._global_key = None
            self.recomputations += 1
        return hit[1]

    def _recompute_global(self, members: list[ScoreMask], key: tuple) -> None:
        parts = [m.scores.detach().reshape(-1) for m in members]
        n = sum(p.numel() for p in parts)
        work = self._scratch = padded_bool_buffer(self._scratch, n, parts[0].device)
        k = round_half_up(self._sparsity * n)
        pred, hint = self._predict_threshold(k)
        keep, t, density = pooled_keep_masks(parts, k, work, hint)
        self._record_threshold(t, k, density, pred)
        self._track_flips(keep)
        self._cache, start = {}, 0
        for m in members:
            size = m.scores.numel()
            self._cache[m.name] = (key, keep[start : start + size].view(m.scores.shape))
            start += size
        self._global_key = key
        self.recomputations += 1

    def _predict_threshold(self, k: int) -> tuple[float | None, tuple[float, float] | None]:
        """Where the ``global`` threshold for removing ``k`` scores should lie,
        and bounds to try first (see :func:`~gnnmask.masks._select.pooled_keep_masks`;
        exact either way). Scores move little per optimiser step, so the
        prediction is the last threshold, shifted by ``(k - k_last) / density``
        while a schedule changes the sparsity; the bounds are
        :data:`HINT_WIDTH` times the prediction error wide on each side, the
        error being the largest recent one (its estimate keeps at least
        :data:`ERR_DECAY` of its last value per step). Without the shift, a
        linear ramp to 90% sparsity over 26 epochs (230K more scores removed
        per step, of 6.6M) made the band around the last threshold ~900K
        scores wide."""
        last = self._threshold
        if last is None:
            return None, None
        t, k_last, density, err = last
        if k == k_last:
            pred = t
        elif density:
            pred = t + (k - k_last) / density
        else:
            return None, None
        if err is None:
            return pred, None
        width = HINT_WIDTH * err + 1e-6 * abs(pred)
        return pred, (pred - width, pred + width)

    def _record_threshold(self, t: float | None, k: int, density: float | None,
                          pred: float | None) -> None:
        """Keep the selection for the next :meth:`_predict_threshold`, with the
        error of this step's prediction (``None`` without one)."""
        if t is None:
            self._threshold = None
            return
        err = None
        if pred is not None:
            last_err = self._threshold.err
            err = max(abs(t - pred), 0.0 if last_err is None else ERR_DECAY * last_err)
        self._threshold = _ThresholdState(t, k, density, err)

    # -- forward passes of the masked model -----------------------------------
    def begin_pass(self) -> None:
        """Compute every member's effective tensor now, for the forward pass
        of the masked model that is starting (a forward pre-hook of the model
        that :func:`~gnnmask.masks.mask_model` returned calls it; nested calls
        count). Until :meth:`end_pass`, a module reading its masked weight
        gets the prepared tensor.

        Why: computing a mask on access costs little, but between two layers
        of a deep GCN the caches are flushed by the layer's own work, and the
        ~30 accesses of a 32-layer model then cost ~9 ms per forward pass on
        CPU; one loop over all members at the start costs ~2-4 ms. Values
        and gradients are those of access-time computation, except that a
        weight read twice shares one graph node (its score gradient is then
        ``(g1 + g2) w`` instead of ``g1 w + g2 w``, equal up to rounding).
        Stochastic rules in training draw their samples at access time (not
        prepared)."""
        self._depth += 1
        if self._depth > 1:
            return
        self._pass = None
        members = list(self.members.values())
        if not members or (self.rule in STOCHASTIC and not self.fixed and members[0].training):
            return
        prepared = {}
        for name, member in self.members.items():
            module, attr = self.targets[name]
            weight = module.parametrizations[attr].original
            prepared[name] = (weight, member.effective(weight))
        self._pass = prepared

    def end_pass(self) -> None:
        """End the forward pass begun by :meth:`begin_pass`."""
        self._depth = max(0, self._depth - 1)
        if self._depth == 0:
            self._pass = None

    def _track_flips(self, keep: Tensor) -> None:
        """Bump :attr:`generation`; :attr:`flips` will compare ``keep`` (the
        new pooled mask) with the previous one."""
        self.generation += 1
        self._previous, self._pooled, self._flips = self._pooled, keep, None

    def _find_flips(self) -> dict[str, Tensor]:
        prev, keep = self._previous, self._pooled
        self._previous = None
        if prev is None or keep is None or prev.numel() != keep.numel() or (
                prev.device != keep.device):
            return {}
        n = keep.numel()
        self._flip_buf = padded_bool_buffer(self._flip_buf, n, keep.device)
        with torch.no_grad(), torch.inference_mode(False):
            torch.ne(prev, keep, out=self._flip_buf[:n])
            members = list(self.members.values())
            sizes = [m.scores.numel() for m in members]
            flips = split_pooled(sparse_nonzero(self._flip_buf), sizes)
        return {m.name: f for m, f in zip(members, flips)}

    def _keep(self, member: ScoreMask) -> Tensor:
        if self.fixed:
            return member.fixed
        s = member.scores.detach()
        if self.rule == "topk":
            n = s.numel()
            k = n - round_half_up((1.0 - self._sparsity) * n)
            return keep_mask(s.abs().view(-1), k).view(s.shape)
        return s > 0  # bernoulli / hard-concrete, deterministic

    def masks(self) -> dict[str, Tensor]:
        """``{name: bool mask}`` of the current deterministic (eval-mode) masks
        (cached tensors; do not modify)."""
        return {name: self.mask(m) for name, m in self.members.items()}

    def achieved_sparsity(self) -> dict:
        """``{"overall": float, "per_tensor": {name: float}}`` of the current masks
        (fraction of entries removed)."""
        per, removed, total = {}, 0, 0
        for name, keep in self.masks().items():
            n, kept = keep.numel(), int(torch.count_nonzero(keep))
            per[name] = (n - kept) / n if n else 0.0
            removed, total = removed + n - kept, total + n
        return {"overall": removed / total if total else 0.0, "per_tensor": per}

    def l0_penalty(self) -> Tensor:
        """Expected fraction of non-zero hard-concrete gates (Louizos et al. 2018,
        eq. 12, normalised by the number of gates):
        ``mean_j sigmoid(s_j - beta * log(-gamma / zeta))``; differentiable in the
        scores. Defined for every rule (it reads the scores as ``log alpha``)."""
        shift = BETA * math.log(-GAMMA / ZETA)
        members = list(self.members.values())
        total = sum(m.scores.numel() for m in members)
        return sum(torch.sigmoid(m.scores - shift).sum() for m in members) / total

    # -- fixed state (tickets) ------------------------------------------------
    def fix(self, masks: dict[str, Tensor] | None = None) -> None:
        """Freeze the masks: to ``masks`` (``{name: bool tensor}``) or, by
        default, to the current deterministic masks. A fixed mask no longer
        depends on the scores (they receive no gradient) nor on the mode."""
        masks = self.masks() if masks is None else masks
        missing = sorted(set(self.members) - set(masks))
        if missing:
            raise UserError(f"fixed masks missing for {missing}")
        for name, m in self.members.items():
            keep = torch.as_tensor(masks[name])
            if tuple(keep.shape) != tuple(m.scores.shape):
                raise UserError(
                    f"mask for {name!r} has shape {tuple(keep.shape)}; "
                    f"allowed: {tuple(m.scores.shape)}"
                )
            m.fixed = keep.to(device=m.scores.device, dtype=torch.bool).clone()
        self.fixed = True
        self.invalidate()

    def unfix(self) -> None:
        """Return to masks computed from the scores."""
        for m in self.members.values():
            m.fixed = None
        self.fixed = False
        self.invalidate()

    def __repr__(self) -> str:
        return (
            f"MaskGroup(rule={self.rule!r}, sparsity={self._sparsity:g}, scale={self.scale!r}, "
            f"tensors={len(self.members)}, fixed={self.fixed})"
        )
