"""Mask rules: how a binary mask is chosen from scores.

A rule is a small object, in the spirit of ``torch.nn.utils.prune``'s
``BasePruningMethod``: :meth:`MaskRule.keep` turns one tensor's scores and the
target ``sparsity`` (the fraction of entries removed, ``0 <= s < 1``) into a
boolean keep-mask. Class attributes say how the mask group uses it:

``pooled``      one selection over the scores of every masked tensor of the
                model (:meth:`MaskRule.keep_pooled`) instead of one per tensor;
``stochastic``  training samples a fresh mask in every forward pass
                (:meth:`MaskRule.sample`); :meth:`keep` is the deterministic
                evaluation mask;
``learns_sparsity``  the sparsity is learnt, not imposed (the knob then only
                sets the ``keep`` scale), so the default scale is ``none``;
``fixed``       no mask is computed at all: the stored mask stays until a
                method (pruning, regrowth) or the user changes it.

:meth:`MaskRule.ranked` is the tensor the straight-through gradient reaches
(the scores, or what the rule ranks). Rules are registered by name
(:data:`RULES`) and resolved from a name or an instance by
:func:`resolve_rule`, as PyG's ``resolver`` does. A new rule is one subclass
here, decorated with :func:`register_rule`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from gnnmask.errors import UserError
from gnnmask.masks.densities import keep_counts, layer_densities
from gnnmask.masks.select import keep_mask, keep_masks_pooled, round_half_up
from gnnmask.registry import Registry, resolve

RULES: Registry = Registry("mask rule")


def register_rule(cls: type[MaskRule]) -> type[MaskRule]:
    """Class decorator adding a :class:`MaskRule` subclass to :data:`RULES`."""
    return RULES.register(cls)


def resolve_rule(rule) -> MaskRule:
    """A :class:`MaskRule` from a registered name or an instance."""
    if isinstance(rule, MaskRule):
        return rule
    if not isinstance(rule, str):
        raise UserError(f"unknown mask rule {rule!r}; allowed: {', '.join(RULES)}")
    return resolve(RULES, rule)()


class MaskRule:
    """Base class: choose a boolean keep-mask from scores."""

    name: ClassVar[str] = "base"
    pooled: ClassVar[bool] = False
    stochastic: ClassVar[bool] = False
    learns_sparsity: ClassVar[bool] = False
    fixed: ClassVar[bool] = False

    def keep(self, scores: Tensor, sparsity: float) -> Tensor:
        """The boolean keep-mask of one tensor's ``scores``."""
        raise NotImplementedError

    def keep_pooled(self, scores: list[Tensor], sparsity: float) -> list[Tensor]:
        """Keep-masks of all tensors at once (rules with ``pooled = True``)."""
        return [self.keep(s, sparsity) for s in scores]

    def ranked(self, scores: Tensor | None) -> Tensor | None:
        """What the straight-through gradient ``dL/dm`` is passed to."""
        return scores

    def sample(self, weight: Tensor, scores: Tensor, scale: Tensor) -> Tensor:
        """The effective weight of one training forward pass (``stochastic`` rules)."""
        raise NotImplementedError

    def penalty(self, scores: list[Tensor]) -> Tensor | None:
        """A regulariser of the scores the rule trains under (``None``: none)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@register_rule
class GlobalThreshold(MaskRule):
    """Untrained GNN tickets (Huang et al., LoG 2022, arXiv:2211.15335): one
    threshold over the raw scores pooled across every masked tensor; exactly
    ``round(sparsity * total)`` entries are removed overall, the smallest scores
    (ties removed in pooled order, see :mod:`gnnmask.masks.select`). Layers may
    end up far sparser or denser than the target."""

    name = "global"
    pooled = True

    def keep(self, scores: Tensor, sparsity: float) -> Tensor:
        return self.keep_pooled([scores], sparsity)[0]

    def keep_pooled(self, scores: list[Tensor], sparsity: float) -> list[Tensor]:
        total = sum(s.numel() for s in scores)
        return keep_masks_pooled(scores, round_half_up(sparsity * total))


@register_rule
class ERK(MaskRule):
    """Untrained tickets with a per-layer budget: each tensor keeps its
    Erdős–Rényi-Kernel share of the weights (:mod:`gnnmask.masks.densities`:
    small layers denser), chosen by largest raw score within the tensor,
    instead of one global threshold that can leave some layers far sparser
    than the target. Exactly ``round(sparsity * total)`` entries go overall."""

    name = "erk"
    pooled = True

    def keep(self, scores: Tensor, sparsity: float) -> Tensor:
        return self.keep_pooled([scores], sparsity)[0]

    def keep_pooled(self, scores: list[Tensor], sparsity: float) -> list[Tensor]:
        sizes = [s.numel() for s in scores]
        total = sum(sizes)
        kept = total - round_half_up(sparsity * total)
        counts = keep_counts(sizes, layer_densities([s.shape for s in scores], sparsity, "erk"),
                             kept)
        return [keep_mask(s.detach().reshape(-1), n - k).view(s.shape)
                for s, n, k in zip(scores, sizes, counts)]


@register_rule
class TopK(MaskRule):
    """edge-popup (Ramanujan et al., CVPR 2020, arXiv:1911.13299): per tensor,
    keep the ``round((1 - sparsity) n)`` entries of largest ``|s|``. The
    straight-through gradient reaches ``|s|`` and then ``s`` through the
    absolute value, ``dL/ds = sign(s) dL/dm``, as the authors' code does
    (without the sign, negative scores move the wrong way)."""

    name = "topk"

    def keep(self, scores: Tensor, sparsity: float) -> Tensor:
        n = scores.numel()
        k = n - round_half_up((1.0 - sparsity) * n)
        return keep_mask(scores.detach().abs().reshape(-1), k).view(scores.shape)

    def ranked(self, scores: Tensor | None) -> Tensor | None:
        return None if scores is None else scores.abs()


class _BernoulliWeight(torch.autograd.Function):
    """``W = c w ⊙ m``, ``m ~ Bernoulli(sigmoid(s))``; straight through the
    sample, exact through the sigmoid: ``dL/ds = c (dL/dW ⊙ w) p (1 - p)``."""

    @staticmethod
    def forward(ctx, weight, scores, scale):
        p = torch.sigmoid(scores)
        m = torch.bernoulli(p).mul_(scale)
        ctx.save_for_backward(weight, p, m, scale)
        return weight * m

    @staticmethod
    def backward(ctx, grad):
        weight, p, m, scale = ctx.saved_tensors
        grad_w = grad * m if ctx.needs_input_grad[0] else None
        return grad_w, grad * weight * (p * (1.0 - p)) * scale, None


@register_rule
class Bernoulli(MaskRule):
    """Supermasks (Zhou et al., NeurIPS 2019, arXiv:1905.01067): training
    samples ``m ~ Bernoulli(sigmoid(s))``; evaluation is deterministic,
    ``m = [s > 0]`` (``sigmoid(s) > 1/2``). The sparsity is learnt."""

    name = "bernoulli"
    stochastic = True
    learns_sparsity = True

    def keep(self, scores: Tensor, sparsity: float) -> Tensor:
        return scores.detach() > 0

    def sample(self, weight: Tensor, scores: Tensor, scale: Tensor) -> Tensor:
        return _BernoulliWeight.apply(weight, scores, scale)


#: Hard-concrete constants (Louizos et al. 2018, section 4).
BETA, GAMMA, ZETA = 2.0 / 3.0, -0.1, 1.1


def hard_concrete_gate(log_alpha: Tensor) -> Tensor:
    """A reparameterised sample of the stretched hard-concrete gate
    ``z = clamp(sigmoid((log u - log(1 - u) + log alpha) / beta) (zeta - gamma)
    + gamma, 0, 1)``, ``u ~ U(0, 1)``."""
    u = torch.rand_like(log_alpha).clamp_(1e-6, 1.0 - 1e-6)
    s = torch.sigmoid((u.log() - torch.log1p(-u) + log_alpha) / BETA)
    return (s * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)


@register_rule
class HardConcrete(MaskRule):
    """L0 regularisation (Louizos et al., ICLR 2018, arXiv:1712.01312):
    training multiplies by stretched hard-concrete gates with ``log alpha =
    s`` (exact reparameterisation gradient); evaluation uses the deterministic
    gate binarised at 1/2, which is ``m = [s > 0]``, so masks are binary
    everywhere. The sparsity is learnt under :func:`l0_penalty` (its
    :meth:`penalty`)."""

    name = "hard-concrete"
    stochastic = True
    learns_sparsity = True

    def keep(self, scores: Tensor, sparsity: float) -> Tensor:
        return scores.detach() > 0

    def sample(self, weight: Tensor, scores: Tensor, scale: Tensor) -> Tensor:
        return weight * (hard_concrete_gate(scores) * scale)

    def penalty(self, scores: list[Tensor]) -> Tensor:
        return l0_penalty(scores)


def l0_penalty(scores: list[Tensor]) -> Tensor:
    """Expected fraction of non-zero hard-concrete gates (Louizos et al. 2018,
    eq. 12, normalised by the number of gates):
    ``mean_j sigmoid(s_j - beta log(-gamma / zeta))``; differentiable in the
    scores (read as ``log alpha``)."""
    shift = BETA * math.log(-GAMMA / ZETA)
    total = sum(s.numel() for s in scores)
    return sum(torch.sigmoid(s - shift).sum() for s in scores) / total


@register_rule
class Fixed(MaskRule):
    """A stored boolean mask that only a method (or the user) changes:
    tickets after training, and sparse training over trainable weights, where
    a pruner sets the mask and dynamic methods prune and regrow entries
    (:mod:`gnnmask.masks.sparse`). Scores, if any, receive no gradient."""

    name = "fixed"
    fixed = True

    def keep(self, scores: Tensor, sparsity: float) -> Tensor:
        raise TypeError("the fixed rule computes no mask; set masks with MaskGroup.set_masks")

    def ranked(self, scores: Tensor | None) -> Tensor | None:
        return None
