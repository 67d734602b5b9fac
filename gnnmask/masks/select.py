"""Exact selection of the ``k`` smallest entries of a flat tensor.

:func:`keep_mask` is the one primitive behind every score-ranking rule: the
``global`` rule applies it to the concatenated scores of all tensors, ``topk``
to ``|s|`` of one tensor, the sparse-training pruners to their saliencies. It
removes *exactly* ``k`` entries, ties included: among entries equal to the
threshold, those at lower positions (earlier tensors, then row-major order)
are removed first, so the result equals a stable sort's first ``k``.

Cost. A full ``kthvalue`` over millions of entries is slow on CPU (an order of
magnitude slower than the sampled band below on the scores of a 32-layer,
448-wide GCN; figures in docs/RESULTS.md), so large inputs locate the
threshold from a strided sample of ``SAMPLE`` entries, count the entries
below a narrow band around that estimate and run ``kthvalue`` on the few
entries inside the band only. The answer is exact by construction: when the
band misses the threshold (adversarial layouts), a full ``kthvalue`` runs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: Inputs with at most this many entries use one plain ``kthvalue``.
SMALL = 1 << 17
#: Size of the strided sample that locates the threshold in large inputs.
SAMPLE = 1 << 16


def round_half_up(x: float) -> int:
    """``round`` without banker's rounding (``2.5 -> 3``): the number of
    entries a fraction of a tensor removes, everywhere in gnnmask."""
    return int(math.floor(x + 0.5))


def _band(sample: Tensor, k: int, n: int) -> tuple[float, float]:
    """Bounds ``lo <= hi`` that hold the ``k``-th smallest of ``n`` values with
    high probability, read off a uniform ``sample`` of them: its quantiles
    ``k/n`` minus and plus five binomial standard deviations (-inf / +inf
    where that runs off the sample). Callers verify by counting."""
    m, q = sample.numel(), k / n
    delta = 5.0 * math.sqrt(q * (1.0 - q) / m) + 2.0 / m
    lo_i, hi_i = math.floor((q - delta) * m), math.ceil((q + delta) * m)
    lo = float(sample.kthvalue(lo_i + 1).values) if lo_i >= 0 else -math.inf
    hi = float(sample.kthvalue(hi_i + 1).values) if hi_i < m else math.inf
    return lo, hi


def _keep_exact(flat: Tensor, k: int) -> Tensor:
    """Drop the ``k`` smallest with one full ``kthvalue`` (ties: lowest positions first)."""
    t = flat.kthvalue(k).values
    keep = flat > t
    surplus = flat.numel() - int(torch.count_nonzero(keep)) - k
    if surplus > 0:  # ties at t: keep the last `surplus` of them
        tied = (flat == t).nonzero().view(-1)
        keep[tied[tied.numel() - surplus :]] = True
    return keep


def _keep_band(flat: Tensor, k: int) -> Tensor | None:
    """Drop the ``k`` smallest by the sampled band; ``None`` if the band missed.

    Two comparison passes give ``v < lo`` and the band ``lo <= v <= hi``; the
    threshold is the ``(k - #{v < lo})``-th smallest band value, and the kept
    set is ``v >= lo`` with the band entries at or below the threshold
    switched off, so no third pass over all entries is needed."""
    n = flat.numel()
    stride = max(1, n // SAMPLE)
    lo, hi = _band(flat[stride // 2 :: stride], k, n)
    below = flat < lo
    idx = (flat <= hi).logical_xor_(below).nonzero().view(-1)  # the band, in position order
    n_below = int(torch.count_nonzero(below))
    if not n_below < k <= n_below + idx.numel():
        return None
    vals = flat[idx]
    t = vals.kthvalue(k - n_below).values
    drop = vals <= t
    surplus = n_below + int(torch.count_nonzero(drop)) - k
    if surplus > 0:  # ties at t: keep the last `surplus` of them
        tied = (vals == t).nonzero().view(-1)
        drop[tied[tied.numel() - surplus :]] = False
    keep = below.logical_not_()
    keep[idx[drop]] = False
    return keep


def keep_mask(flat: Tensor, k: int) -> Tensor:
    """Boolean keep-mask of the 1-D tensor ``flat`` that drops exactly its ``k``
    smallest entries (``k`` is clipped to ``0..numel``); ties at the threshold
    are dropped from the lowest position up."""
    flat = flat.detach()
    n = flat.numel()
    if k <= 0 or n == 0:
        return torch.ones_like(flat, dtype=torch.bool)
    if k >= n:
        return torch.zeros_like(flat, dtype=torch.bool)
    keep = _keep_band(flat, k) if n > SMALL else None
    return _keep_exact(flat, k) if keep is None else keep


def keep_masks_pooled(parts: list[Tensor], k: int) -> list[Tensor]:
    """:func:`keep_mask` over the concatenation of ``parts`` (any shapes),
    returned as one boolean mask per part, shaped like it."""
    flat = torch.cat([p.detach().reshape(-1) for p in parts])
    keep = keep_mask(flat, k)
    return [m.view(p.shape) for m, p in zip(keep.split([p.numel() for p in parts]), parts)]
