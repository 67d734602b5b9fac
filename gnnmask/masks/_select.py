"""Exact selection of the ``k`` smallest entries pooled over several tensors.

:func:`keep_masks` is the one primitive behind the ``global`` and ``topk`` mask
rules. It removes *exactly* ``k`` entries, ties included: among entries equal
to the threshold, those that come first in pooled order (the tensors in the
order given, each flattened row-major) are removed first.

Cost. A full ``kthvalue`` over millions of entries is slow on CPU (~0.3 s for
6.4M floats on two cores), so large inputs use a sample-then-band selection:
the threshold's position is estimated from a strided sample of ~64K entries,
one pass counts the entries below a band around the estimate and gathers the
few (~1%) inside it, and ``kthvalue`` runs on the band only. The result is
exact by construction; if the band misses the threshold (adversarial value
layouts) it falls back to the full ``kthvalue``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

#: Inputs with at most this many entries use one plain ``kthvalue``.
SMALL = 1 << 17
#: Size of the strided sample that locates the threshold in large inputs.
SAMPLE = 1 << 16


def _count(tensors: Sequence[Tensor], fn) -> int:
    return int(sum(torch.count_nonzero(fn(t)) for t in tensors))


def kth_smallest(values: Sequence[Tensor], k: int) -> tuple[Tensor, int, int]:
    """The ``k``-th smallest (1-based) pooled value ``t`` of flat ``values``,
    with ``#{v < t}`` and ``#{v <= t}``."""
    n = sum(v.numel() for v in values)
    if n > SMALL:
        stride = max(1, n // SAMPLE)
        sample = torch.cat([v[(i * 7919) % stride :: stride] for i, v in enumerate(values)])
        m = sample.numel()
        if m:
            q = k / n
            delta = 5.0 * math.sqrt(q * (1.0 - q) / m) + 2.0 / m
            lo_i, hi_i = math.floor((q - delta) * m), math.ceil((q + delta) * m)
            inf = sample.new_tensor(math.inf)
            lo = sample.kthvalue(lo_i + 1).values if lo_i >= 0 else -inf
            hi = sample.kthvalue(hi_i + 1).values if hi_i < m else inf
            below = _count(values, lambda v: v < lo)
            # v <= hi and not v < lo, in one boolean op (lo <= hi)
            band = torch.cat([v[(v <= hi) ^ (v < lo)] for v in values])
            if below < k <= below + band.numel():
                t = band.kthvalue(k - below).values
                return t, below + _count([band], lambda v: v < t), below + _count(
                    [band], lambda v: v <= t
                )
    flat = torch.cat(list(values))
    t = flat.kthvalue(k).values
    return t, _count([flat], lambda v: v < t), _count([flat], lambda v: v <= t)


def keep_masks(values: Sequence[Tensor], k: int) -> list[Tensor]:
    """Boolean keep-masks (shaped like ``values``) that drop exactly the ``k``
    smallest pooled entries; ties at the threshold are dropped in pooled order.

    Args:
        values: tensors of one dtype and device (read only, never copied whole
            unless small).
        k: how many entries to drop, ``0 <= k <= total``.
    """
    flat = [v.detach().reshape(-1) for v in values]
    n = sum(v.numel() for v in flat)
    if k <= 0 or n == 0:
        return [torch.ones_like(v, dtype=torch.bool) for v in values]
    if k >= n:
        return [torch.zeros_like(v, dtype=torch.bool) for v in values]
    t, n_lt, n_le = kth_smallest(flat, k)
    keeps = [v > t for v in flat]
    if n_le > k:  # ties at t: drop only the first k - n_lt of them, keep the rest
        drop = k - n_lt
        for v, keep in zip(flat, keeps):
            eq = v == t
            if torch.count_nonzero(eq):  # cheap test; nonzero() only where ties are
                tied = eq.nonzero().view(-1)
                keep[tied[drop:]] = True
                drop = max(0, drop - tied.numel())
    return [keep.view(v.shape) for keep, v in zip(keeps, values)]
