"""Pairwise-distance over-smoothing metrics: MAD, MADGap, SMV and the group
distance ratio.

All four are averages of a distance over pairs of rows of ``x``. None of them
forms an ``N x N`` matrix beyond ``chunk_size`` entries:

* MAD (any target) is exact in ``O(N d + E d)`` through closed forms.
* SMV, the group distance ratio and MADGap have no linear shortcut (a square
  root, a Euclidean norm, hop distances). They are exact over row blocks up to
  ``EXACT_MAX_NODES`` (5,000) nodes and, above it, by default *estimated* from
  ``num_samples`` source rows drawn uniformly without replacement with a fixed
  ``seed``; every sampled row's average is still exact over all ``N`` partners.
  ``exact=True`` forces the exact ``O(N^2 d)`` computation at any size.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torch.nn.functional import one_hot

from gnnmask.errors import UserError

from ._common import (
    DEFAULT_CHUNK,
    DEFAULT_SAMPLES,
    as_graph,
    check_labels,
    check_positive,
    check_target,
    check_x,
    direction_groups,
    hop_balls,
    pick_sources,
    spans,
    tile_shape,
    unique,
    unit_rows,
    unpack_bits,
)

__all__ = ["mad", "mad_gap", "smv", "group_distance_ratio"]


def _node_average(sums: Tensor, counts: Tensor, num_pairs: int) -> float:
    """MAD's two-level average: per node over its non-zero-distance pairs, then
    over nodes with at least one such pair. ``nan`` when the target holds no
    pair at all; ``0.0`` when it holds pairs but all at distance 0."""
    if num_pairs == 0:
        return math.nan
    has = counts > 0
    if not bool(has.any()):
        return 0.0
    return float((sums[has] / counts[has]).clamp(0.0, 2.0).mean())


def mad(x: Tensor, edge_index=None, target: str = "all") -> float:
    r"""Mean Average Distance (MAD) of node representations.

    Chen et al., "Measuring and Relieving the Over-smoothing Problem for Graph
    Neural Networks from the Topological View", AAAI 2020:

    .. math::
        D_{ij} = 1 - \frac{x_i^\top x_j}{\|x_i\|\,\|x_j\|}, \quad
        \bar D_i = \frac{\sum_j M_{ij} D_{ij}}{\sum_j \mathbb 1[M_{ij} D_{ij} \ne 0]}, \quad
        \mathrm{MAD} = \frac{\sum_i \bar D_i}{\sum_i \mathbb 1[\bar D_i \ne 0]}

    with the target mask ``M``: ``"all"`` pairs ``i != j``; ``"neighbors"``
    pairs joined by an edge; ``"remote"`` pairs ``i != j`` not joined by an
    edge. The graph is read as undirected and simple (see
    :mod:`gnnmask.metrics`); it is only needed for ``neighbors``/``remote``.

    Conventions:

    * **Zero distance** means the two normalised rows are identical (as float
      vectors); such pairs are excluded from the per-node count, as the
      paper's non-zero rule prescribes. A **zero row** has no direction: any
      pair involving it has distance 0 and drops out likewise.
    * Self pairs are never targets. Nodes without a non-zero target pair
      (isolated nodes for ``neighbors``, duplicates, zero rows) are left out of
      the outer average.
    * Returns ``0.0`` when target pairs exist but all have distance 0 (e.g.
      identical rows) and ``nan`` when there is no target pair (``N < 2``, or
      no edge for ``neighbors``).

    Exact, in ``O(N d + E d)`` time and memory (no pairwise block at all),
    with :math:`\hat x_i = x_i / \|x_i\|` in float64 (resolution of a
    distance about ``1e-15``). For ``all``,

    .. math::
        \sum_{j \notin g(i)} D_{ij} = c_i - \hat x_i^\top \Big(\sum_j \hat x_j\Big)
            + |g(i)|\,\|\hat x_i\|^2

    where ``g(i)`` are the rows identical to row ``i`` after normalisation and
    ``c_i`` counts the non-zero rows outside ``g(i)``; ``neighbors`` is the
    same with :math:`\sum_j \hat x_j` replaced by the sparse product
    :math:`(A \hat X)_i` and the counts by degrees (minus zero and identical
    neighbours); ``remote`` is ``all`` minus ``neighbors`` per node.
    """
    x = check_x(x)
    check_target(target)
    n = x.shape[0]
    xh, nonzero = unit_rows(x)
    gid, gsize = direction_groups(xh)
    sq = (xh * xh).sum(1)
    if target in ("all", "remote"):
        counts = nonzero.sum() - gsize
        sums = counts - (xh @ xh.sum(0) - gsize * sq)
        num_pairs = n * (n - 1)
    if target in ("neighbors", "remote"):
        graph = as_graph(edge_index, n, x.device)
        r, c = graph.row, graph.col
        zero_nb = torch.zeros(n, dtype=torch.long, device=x.device)
        zero_nb.index_add_(0, r, (~nonzero[c]).long()).index_add_(0, c, (~nonzero[r]).long())
        same = (nonzero[r] & nonzero[c] & (gid[r] == gid[c])).long()
        same_nb = torch.zeros_like(zero_nb).index_add_(0, r, same).index_add_(0, c, same)
        nb_counts = graph.degree - zero_nb - same_nb
        nb_sums = nb_counts - ((graph.adjacency @ xh) * xh).sum(1) + same_nb * sq
        if target == "neighbors":
            counts, sums, num_pairs = nb_counts, nb_sums, 0
        else:
            counts, sums = counts - nb_counts, sums - nb_sums
        num_pairs += (1 if target == "neighbors" else -1) * 2 * graph.num_edges
    counts = torch.where(nonzero, counts, 0)
    return _node_average(torch.where(nonzero, sums, 0.0), counts, num_pairs)


def _mad_bands(x: Tensor, edge_index, near_hops: int, far_hops: int, exact: bool | None,
               num_samples: int, seed: int, chunk_size: int) -> tuple[float, float, bool]:
    """``(MAD_neb, MAD_rmt, is_exact)`` for :func:`mad_gap`.

    For a source ``s`` and a band ``B`` (a 0/1 column over all nodes), the
    non-zero-distance pairs are the band minus zero rows and minus the ``m_s``
    rows identical to ``s`` (``s`` itself included when in ``B``), so

        count = |B| - |B & zero| - m_s,
        sum   = count - xh_s . (B^T Xh - m_s xh_s),

    with ``B^T [Xh, 1, is_zero]`` accumulated over node blocks for 512
    sources (8 BFS runs of 64) at a time.
    """
    x = check_x(x)
    check_positive("near_hops", near_hops)
    if isinstance(far_hops, bool) or not isinstance(far_hops, int) or far_hops <= near_hops:
        raise UserError(f"far_hops must be an integer > near_hops ({near_hops}); got {far_hops!r}")
    check_positive("num_samples", num_samples)
    check_positive("chunk_size", chunk_size)
    n, dev = x.shape[0], x.device
    graph = as_graph(edge_index, n, dev)
    xh, nonzero = unit_rows(x)
    gid, gsize = direction_groups(xh)
    any_dup = bool((gsize[nonzero] > 1).any())
    d = x.shape[1]
    # [xh, 1, is_zero]: one product gives each band's sum of xh, size and zero rows
    aug = torch.cat([xh, torch.ones_like(xh[:, :1]), (~nonzero)[:, None].double()], 1)
    src, is_exact = pick_sources(n, exact, num_samples, seed, dev)
    sums = torch.zeros(2, len(src), dtype=torch.float64, device=dev)
    counts = torch.zeros(2, len(src), dtype=torch.long, device=dev)
    num_pairs = [0, 0]
    src_np = src.cpu().numpy()
    for cols in spans(len(src), 512):  # 8 BFS words per product (wider is faster)
        s, k = src[cols], cols.stop - cols.start
        packed = []  # [N, 2, words]: neighbour band, remote band
        for w in spans(k, 64):
            balls = hop_balls(graph, src_np[cols][w], (near_hops, far_hops - 1))
            packed.append(np.stack([balls[near_hops], ~balls[far_hops - 1]], 1))
        packed = np.stack(packed, 2)
        width = 64 * packed.shape[2]  # k plus padding bits of the last word
        acc = torch.zeros(d + 2, 2 * width, dtype=torch.float64, device=dev)
        same_in = torch.tensor([[1], [0]], device=dev)  # s itself, when s has no twin
        if any_dup:
            same_in = torch.zeros(2, k, dtype=torch.long, device=dev)
        for js in spans(n, max(1, chunk_size // (2 * width))):
            band = unpack_bits(packed[js], 64, dev).view(-1, 2, width)  # [n_b, 2, width]
            acc += aug[js].T @ band.view(-1, 2 * width).to(torch.float64)
            if any_dup:
                twin = nonzero[js, None] & (gid[js, None] == gid[s])
                same_in += (band[:, :, :k] & twin[:, None]).sum(0)
        acc = acc.view(d + 2, 2, width)[:, :, :k]
        size, zero_in = acc[d].round().long(), acc[d + 1].round().long()
        num_pairs[0] += int(size[0].sum()) - k  # the source is not its own pair
        num_pairs[1] += int(size[1].sum())
        count = size - zero_in - same_in
        dots = (acc[:d] * xh[s].T[:, None]).sum(0) - same_in * (xh[s] * xh[s]).sum(1)
        counts[:, cols] = torch.where(nonzero[s], count, 0)
        sums[:, cols] = torch.where(nonzero[s], count - dots, 0.0)
    neb = _node_average(sums[0], counts[0], num_pairs[0])
    rmt = _node_average(sums[1], counts[1], num_pairs[1])
    return neb, rmt, is_exact


def mad_gap(x: Tensor, edge_index, near_hops: int = 3, far_hops: int = 8, *,
            exact: bool | None = None, num_samples: int = DEFAULT_SAMPLES, seed: int = 0,
            chunk_size: int = DEFAULT_CHUNK) -> float:
    r"""MADGap: MAD over remote pairs minus MAD over neighbouring pairs.

    Chen et al., AAAI 2020 (see :func:`mad`), with the paper's orders
    ``near_hops=3``, ``far_hops=8``:

    .. math::
        \mathrm{MADGap} = \mathrm{MAD}^{rmt} - \mathrm{MAD}^{neb}, \quad
        M^{neb}_{ij} = \mathbb 1[1 \le h(i,j) \le \text{near\_hops}], \quad
        M^{rmt}_{ij} = \mathbb 1[h(i,j) \ge \text{far\_hops}]

    where ``h`` is the hop (shortest-path) distance in the undirected graph;
    pairs in different connected components have ``h = inf`` and are remote.
    Each MAD uses :func:`mad`'s conventions (non-zero rule, zero rows, node
    average). A band without any pair gives ``nan`` (e.g. a graph whose
    diameter is below ``far_hops`` has no remote pairs, so MADGap is ``nan``).

    Hop distances come from a level-synchronous BFS run from 64 sources at a
    time with one bit per source (CPU, ``far_hops - 1`` levels at most,
    stopping early once every source's component is exhausted). The band sums
    then use :math:`\sum_{j \in B} D_{sj} = |B| - \hat x_s^\top \sum_{j \in B}
    \hat x_j` (corrected for zero rows and rows identical to ``s``): one
    float64 product ``[d + 2, n_b] @ [n_b, 2 * 512]`` per block of
    ``n_b = chunk_size // 1024`` nodes and 512 sources, never an ``N x N`` block.

    Exactness: with all ``N`` nodes as sources the value is exact. That costs
    ``O(N (E + N d))``, so by default (``exact=None``) it is used only for
    ``N <= 5,000``; above, ``num_samples`` source nodes are drawn uniformly
    without replacement (``seed``), their per-node averages
    :math:`\bar D_i` are computed exactly, and each MAD is the mean over the
    sampled nodes that have a non-zero pair in the band: a simple random
    sample of the nodes the exact MAD averages over, so each band's MAD, and
    their difference, is estimated without bias (given at least one sampled
    node in each band), with a standard error of about
    ``std(D_i) / sqrt(num_samples)``. ``exact=True`` forces the exact value.
    """
    neb, rmt, _ = _mad_bands(x, edge_index, near_hops, far_hops, exact, num_samples, seed,
                             chunk_size)
    return rmt - neb


def _zero_self(dist: Tensor, index: Tensor, cols: slice) -> None:
    """Zero ``dist[b, index[b] - cols.start]`` where ``index[b]`` falls in ``cols``
    (the self pairs of a tile)."""
    hit = ((index >= cols.start) & (index < cols.stop)).nonzero().view(-1)
    dist[hit, index[hit] - cols.start] = 0.0


def smv(x: Tensor, *, exact: bool | None = None, num_samples: int = DEFAULT_SAMPLES,
        seed: int = 0, chunk_size: int = DEFAULT_CHUNK) -> float:
    r"""Smoothness metric value (SMV) of DAGNN.

    Liu, Gao & Ji, "Towards Deeper Graph Neural Networks", KDD 2020:

    .. math::
        D(x_i, x_j) = \tfrac12 \Big\| \frac{x_i}{\|x_i\|} - \frac{x_j}{\|x_j\|} \Big\|_2, \quad
        \mathrm{SMV}_i = \frac{1}{N-1} \sum_{j \ne i} D(x_i, x_j), \quad
        \mathrm{SMV} = \frac1N \sum_i \mathrm{SMV}_i

    i.e. the mean over ordered pairs ``i != j`` of half the Euclidean distance
    between normalised rows, in ``[0, 1]`` (0: all rows point the same way).
    Computed as ``sqrt(2 - 2 cos) / 2`` in float64 over tiles of
    ``chunk_size`` pairs (a pair's distance is resolved to about ``1e-8``: the
    square root amplifies the rounding of ``cos``).

    Conventions: a pair involving a **zero row** has distance 0 (no
    direction), but still counts in the ``N(N-1)`` normalisation; ``N < 2``
    gives ``nan``.

    Exactness: exact (``O(N^2 d)``) when ``exact=True`` or, by default, when
    ``N <= 5,000``. Above that the default is an **unbiased estimate**: the
    mean of the exact :math:`\mathrm{SMV}_i` over ``num_samples`` nodes drawn
    uniformly without replacement with ``seed``; standard error about
    ``std(SMV_i) / sqrt(num_samples)``.
    """
    x = check_x(x)
    check_positive("num_samples", num_samples)
    check_positive("chunk_size", chunk_size)
    n = x.shape[0]
    if n < 2:
        return math.nan
    xh, nonzero = unit_rows(x)
    ones = torch.ones(n, 1, dtype=torch.float64, device=x.device)
    left = torch.cat([xh, ones], 1)  # left_i . right_j = 2 - 2 cos(x_i, x_j)
    right = torch.cat([-2.0 * xh, 2.0 * ones], 1)[nonzero]
    position = torch.cumsum(nonzero.long(), 0) - 1  # row index within `right`
    sources, _ = pick_sources(n, exact, num_samples, seed, x.device)
    src = sources[nonzero[sources]]  # zero-row sources contribute 0 but count
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    rows, cols = tile_shape(len(src), len(right), chunk_size)
    for rs in spans(len(src), rows):
        ls, pos = left[src[rs]], position[src[rs]]
        for cs in spans(len(right), cols):
            dist = (ls @ right[cs].T).clamp_(min=0.0).sqrt_()
            _zero_self(dist, pos, cs)
            total += dist.sum()
    return float(total) / (2.0 * (n - 1) * len(sources))


def _class_sources(cls: Tensor, num_classes: int, exact: bool | None, num_samples: int,
                   seed: int) -> tuple[Tensor, bool]:
    """All nodes, or up to ``ceil(num_samples / C)`` per class (uniform, seeded)."""
    n = cls.numel()
    src, is_exact = pick_sources(n, exact, num_samples, seed, cls.device)
    if is_exact:
        return src, True
    gen = torch.Generator().manual_seed(seed)
    per_class = -(-num_samples // num_classes)
    picks = []
    for c in range(num_classes):
        members = (cls == c).nonzero().view(-1).cpu()
        picks.append(members[torch.randperm(len(members), generator=gen)[:per_class]])
    return torch.cat(picks).sort().values.to(cls.device), False


def group_distance_ratio(x: Tensor, y: Tensor, eps: float = 1e-5, *, form: str = "pyg",
                         exact: bool | None = None, num_samples: int = DEFAULT_SAMPLES,
                         seed: int = 0, chunk_size: int = DEFAULT_CHUNK) -> float:
    r"""Group distance ratio: mean inter-class over mean intra-class distance.

    Zhou et al., "Towards Deeper Graph Neural Networks with Differentiable
    Group Normalization", NeurIPS 2020. Matches
    :meth:`torch_geometric.nn.DiffGroupNorm.group_distance_ratio` (whose code,
    not its docstring formula, is what is reproduced):

    .. math::
        R = \frac{\frac{1}{(C-1)^2} \sum_{c} \frac{1}{|X_c|\,(N-|X_c|)}
              \sum_{u \in X_c} \sum_{v \notin X_c} \|x_u - x_v\|_2}
             {\frac1C \sum_c \frac{1}{|X_c|^2} \sum_{u, v \in X_c} \|x_u - x_v\|_2 + \epsilon}

    on the raw (unnormalised) rows; ``X_c`` are the nodes of class ``c``. Note
    the numerator pairs each class with *all other nodes* (class-size
    weighted), not class by class as the docstring formula of PyG suggests; the
    intra-class mean includes the zero self pairs (``|X_c|^2`` pairs).

    ``form="paper"`` is the paper's Eq. (the formula of PyG's docstring): the
    numerator averages the class-pair means instead,

    .. math::
        \frac{1}{(C-1)^2} \sum_{c \ne d} \frac{1}{|X_c|\,|X_d|}
        \sum_{u \in X_c} \sum_{v \in X_d} \|x_u - x_v\|_2

    (the two agree for two classes). Records name the form by the metric:
    ``group_distance_ratio`` (PyG's code) or ``group_distance_ratio_paper``.

    Conventions: ``C`` counts the classes *present* in ``y`` (PyG uses
    ``y.max() + 1`` and fails on empty classes; the values agree whenever PyG's
    is defined). Fewer than 2 classes raise :class:`UserError`.

    Distances come from ``||x_u||^2 + ||x_v||^2 - 2 x_u . x_v`` in float64
    over tiles of ``chunk_size`` pairs (resolved to about ``1e-8`` times the
    row norms; PyG's ``torch.cdist`` in float32 resolves about ``3e-4``).

    Exactness: exact (``O(N^2 d)``) when ``exact=True`` or, by default, when
    ``N <= 5,000``. Above that
    the default draws up to ``ceil(num_samples / C)`` nodes per class
    (uniformly without replacement, ``seed``); each sampled node's distance
    sums to all ``N`` nodes are exact, so every per-class mean in the numerator
    and the denominator is estimated without bias. Their ratio is a consistent
    estimate with ``O(1 / samples)`` bias.
    """
    x = check_x(x)
    if form not in ("pyg", "paper"):
        raise UserError(f"group_distance_ratio form {form!r} is invalid; allowed: pyg, paper")
    check_positive("num_samples", num_samples)
    check_positive("chunk_size", chunk_size)
    n, dev = x.shape[0], x.device
    y = check_labels(y, n, dev)
    cls = unique(y)[1]
    num_classes = int(cls.max()) + 1 if n else 0
    if num_classes < 2:
        raise UserError(f"group_distance_ratio needs labels of at least 2 classes; "
                        f"y has {num_classes}")
    size = torch.bincount(cls, minlength=num_classes).double()
    x64 = x.double()
    sq = (x64 * x64).sum(1, keepdim=True)
    ones = torch.ones_like(sq)
    left = torch.cat([x64, sq, ones], 1)  # left_u . right_v = ||x_u - x_v||^2
    right = torch.cat([-2.0 * x64, ones, sq], 1)
    src, _ = _class_sources(cls, num_classes, exact, num_samples, seed)
    # pair[c, d]: summed distances from the picked nodes of class c to class d
    pair = torch.zeros(num_classes, num_classes, dtype=torch.float64, device=dev)
    member = one_hot(cls, num_classes).double() if num_classes <= 64 else None
    rows, cols = tile_shape(len(src), n, chunk_size)
    for rs in spans(len(src), rows):
        s = src[rs]
        by_class = torch.zeros(len(s), num_classes, dtype=torch.float64, device=dev)
        for cs in spans(n, cols):
            dist = (left[s] @ right[cs].T).clamp_(min=0.0).sqrt_()
            _zero_self(dist, s, cs)
            if member is not None:  # class sums as a small product
                by_class += dist @ member[cs]
            else:
                by_class.index_add_(1, cls[cs], dist)
        pair.index_add_(0, cls[s], by_class)
    picked = torch.bincount(cls[src], minlength=num_classes).double()
    own = pair.diagonal()
    intra = own / picked / size
    if form == "pyg":  # each class against all other nodes
        inter = (pair.sum(1) - own) / picked / (n - size)
    else:  # each ordered pair of distinct classes
        inter = (pair / picked[:, None] / size[None, :]).fill_diagonal_(0.0).sum(1)
    numerator = inter.sum() / (num_classes - 1) ** 2
    denominator = intra.sum() / num_classes
    return float(numerator / (denominator + eps))
