"""Layer-wise densities: how a sparsity budget is split over the masked tensors.

For target sparsity ``s`` (the fraction removed overall), the fraction each
tensor keeps, ``d_l``:

``uniform``  ``d_l = 1 - s`` for every tensor.
``erk``      Erdős–Rényi-Kernel (Evci et al., ICML 2020, after Mocanu et
             al. 2018): ``d_l = eps * sum(shape_l) / prod(shape_l)``, ``eps``
             chosen so that the total is met; a tensor whose density would
             exceed 1 is kept dense and ``eps`` re-solved. Small layers (a
             GCN's classifier) stay denser than large ones.
``global``   no per-tensor budget: one threshold over the scores of all
             tensors (e.g. global magnitude pruning); no densities.

:func:`keep_counts` turns densities into integer counts that sum to the exact
total.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gnnmask.errors import check_choice
from gnnmask.registry import Registry

DISTRIBUTIONS = Registry("density distribution", {
    "uniform": "Every tensor at the same density.",
    "erk": "Erdős–Rényi-Kernel densities (Evci et al. 2020): smaller tensors denser.",
    "global": "One magnitude threshold across all tensors.",
})


def layer_densities(shapes: Sequence[Sequence[int]], sparsity: float,
                    distribution: str = "uniform") -> list[float]:
    """The fraction of entries each tensor keeps (see the module docstring);
    the kept total is ``(1 - sparsity) * sum(numel)``. ``global`` has no
    per-tensor densities (``ValueError``)."""
    check_choice("density distribution", distribution, list(DISTRIBUTIONS)[:2])
    sizes = [math.prod(s) for s in shapes]
    if distribution == "uniform":
        return [1.0 - sparsity] * len(sizes)
    raw = [sum(s) / math.prod(s) for s in shapes]  # Erdős–Rényi(-Kernel) ratios
    budget = (1.0 - sparsity) * sum(sizes)
    dense: set[int] = set()
    while True:
        rest = [i for i in range(len(sizes)) if i not in dense]
        eps = (budget - sum(sizes[i] for i in dense)) / sum(raw[i] * sizes[i] for i in rest)
        over = [i for i in rest if eps * raw[i] > 1.0]
        if not over:
            return [1.0 if i in dense else eps * raw[i] for i in range(len(sizes))]
        dense.add(max(over, key=lambda i: raw[i]))


def keep_counts(sizes: Sequence[int], densities: Sequence[float], kept: int) -> list[int]:
    """Integer kept counts per tensor, close to ``density * size``, capped at
    ``size`` and summing to exactly ``kept`` (largest remainders first)."""
    want = [min(float(n), d * n) for n, d in zip(sizes, densities)]
    counts = [math.floor(w) for w in want]
    order = sorted(range(len(sizes)), key=lambda i: (counts[i] - want[i], i))
    short = kept - sum(counts)
    for i in order * 2:  # a second pass only if capped tensors were skipped
        if short <= 0:
            break
        if counts[i] < sizes[i]:
            counts[i] += 1
            short -= 1
    return counts
