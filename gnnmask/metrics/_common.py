"""Shared plumbing of the metrics: input checks, the undirected graph view,
unit rows, node sampling and batched breadth-first search.

Conventions used by every metric (stated once here, repeated in docstrings):

* ``edge_index`` is read as an **undirected, unweighted, simple** graph: the
  direction of each entry is ignored, duplicates collapse and self-loops are
  dropped. PyG's convention of storing both directions therefore gives the same
  graph as storing one.
* Work is done on ``x.device`` in float64 (cheap at ``N x d`` and ``E x d``, and
  it keeps the closed forms and the ``sqrt(2 - 2 cos)`` distances accurate for
  nearly identical rows). Hop distances are found on the CPU.
* ``chunk_size`` bounds the number of entries of any pairwise block: a tile
  of the distance matrix (up to 512 rows by ``chunk_size // rows`` columns),
  an edge block (``chunk_size // d`` edges) or a block of BFS membership bits;
  so nothing ``N x N`` is formed once ``N * N > chunk_size`` (default
  ``2**21``, 16 MiB of float64).
"""

from __future__ import annotations

import warnings
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from gnnmask.errors import UserError, check_choice

#: Default block budget: entries per pairwise block (16 MiB in float64).
DEFAULT_CHUNK = 1 << 21
#: Sampled metrics are exact by default up to this many nodes.
EXACT_MAX_NODES = 5_000
#: Default number of sampled source nodes above ``EXACT_MAX_NODES``.
DEFAULT_SAMPLES = 512


# ----------------------------------------------------------------- checks ---

def check_x(x) -> Tensor:
    """Validate node features; return them as a floating ``[N, d]`` tensor."""
    if not isinstance(x, Tensor):
        raise UserError(f"x must be a torch.Tensor of shape [N, d]; got {type(x).__name__}")
    if x.dim() != 2:
        raise UserError(f"x must have shape [N, d]; got shape {list(x.shape)}")
    if not x.is_floating_point():
        x = x.float()
    if not bool(torch.isfinite(x).all()):
        raise UserError("x contains NaN or infinite values; all features must be finite")
    return x.detach()


def check_labels(y, num_nodes: int, device) -> Tensor:
    """Validate class labels: integers ``>= 0``, shape ``[N]`` (or ``[N, 1]``)."""
    if not isinstance(y, Tensor):
        raise UserError(f"y must be a torch.Tensor of N integer labels; got {type(y).__name__}")
    if y.dim() == 2 and y.shape[1] == 1:
        y = y.view(-1)
    if y.dim() != 1 or y.numel() != num_nodes:
        raise UserError(f"y must have shape [{num_nodes}] (one label per row of x); "
                        f"got shape {list(y.shape)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise UserError(f"y must hold integer class labels; got dtype {y.dtype}")
    if num_nodes and int(y.min()) < 0:
        raise UserError(f"y must hold class labels >= 0; got {int(y.min())}")
    return y.to(device=device, dtype=torch.long)


def check_positive(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return value


def check_target(target: str) -> str:
    check_choice("MAD target", target, ("all", "neighbors", "remote"))
    return target


def unique(t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``torch.unique(t, return_inverse=True, return_counts=True)`` for a 1-D
    tensor; on the CPU through numpy, whose sort is much faster than torch's
    multi-threaded one on a busy machine."""
    if t.device.type != "cpu":
        return torch.unique(t, return_inverse=True, return_counts=True)
    values, inverse, counts = np.unique(t.numpy(), return_inverse=True, return_counts=True)
    return tuple(torch.from_numpy(a.reshape(-1)) for a in (values, inverse, counts))


# ------------------------------------------------------------------ graph ---

class Graph:
    """Undirected simple graph on ``num_nodes`` nodes: each edge once as
    ``row < col`` (sorted), on the device of the features.

    Build with :func:`as_graph`; metric functions accept a ``Graph`` wherever
    they accept ``edge_index``, so callers evaluating many metrics (e.g.
    :func:`~gnnmask.metrics.compute_metrics`) coalesce the edges only once.
    """

    def __init__(self, row: Tensor, col: Tensor, num_nodes: int):
        self.row, self.col, self.num_nodes = row, col, num_nodes

    @property
    def num_edges(self) -> int:
        """Number of undirected edges."""
        return self.row.numel()

    def to(self, device) -> Graph:
        if self.row.device == torch.device(device):
            return self
        return Graph(self.row.to(device), self.col.to(device), self.num_nodes)

    @cached_property
    def degree(self) -> Tensor:
        """Node degrees (neighbours), int64, on the graph's device."""
        ones = torch.ones_like(self.row)
        deg = torch.zeros(self.num_nodes, dtype=torch.long, device=self.row.device)
        return deg.index_add_(0, self.row, ones).index_add_(0, self.col, ones)

    @cached_property
    def csr(self) -> tuple[np.ndarray, np.ndarray]:
        """Symmetric CSR structure ``(indptr, indices)`` as numpy arrays (CPU)."""
        r, c = self.row.cpu().numpy(), self.col.cpu().numpy()
        src, dst = np.concatenate([r, c]), np.concatenate([c, r])
        order = np.argsort(src, kind="stable")
        indptr = np.zeros(self.num_nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=self.num_nodes), out=indptr[1:])
        return indptr, dst[order]

    @cached_property
    def adjacency(self) -> Tensor:
        """Symmetric 0/1 adjacency as a float64 sparse CSR tensor (graph device)."""
        indptr, indices = self.csr
        dev = self.row.device
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(
                torch.from_numpy(indptr).to(dev), torch.from_numpy(indices).to(dev),
                torch.ones(len(indices), dtype=torch.float64, device=dev),
                (self.num_nodes, self.num_nodes))


def as_graph(edge_index, num_nodes: int, device) -> Graph:
    """Validate ``edge_index`` ``[2, E]`` and return the undirected simple graph."""
    if isinstance(edge_index, Graph):
        if edge_index.num_nodes != num_nodes:
            raise UserError(f"graph has {edge_index.num_nodes} nodes but x has "
                            f"{num_nodes} rows; they must match")
        return edge_index.to(device)
    if edge_index is None:
        raise UserError("this metric needs edge_index (a [2, E] tensor); got None")
    if not isinstance(edge_index, Tensor):
        raise UserError(f"edge_index must be a torch.Tensor of shape [2, E]; "
                        f"got {type(edge_index).__name__}")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise UserError(f"edge_index must have shape [2, E]; got shape {list(edge_index.shape)}")
    if edge_index.is_floating_point() or edge_index.dtype == torch.bool:
        raise UserError(f"edge_index must hold integer node ids; got dtype {edge_index.dtype}")
    ei = edge_index.to(device=device, dtype=torch.long)
    if ei.numel():
        lo, hi = int(ei.min()), int(ei.max())
        if lo < 0 or hi >= num_nodes:
            bad = lo if lo < 0 else hi
            raise UserError(f"edge_index holds node id {bad}; allowed ids are 0..{num_nodes - 1} "
                            f"(x has {num_nodes} rows)")
    a, b = torch.minimum(ei[0], ei[1]), torch.maximum(ei[0], ei[1])
    keep = a != b
    key = unique(a[keep] * num_nodes + b[keep])[0]
    return Graph(key // num_nodes, key % num_nodes, num_nodes)


# ------------------------------------------------------------- unit rows ---

def unit_rows(x: Tensor) -> tuple[Tensor, Tensor]:
    """Rows scaled to unit norm in float64, and the mask of non-zero rows.

    Zero rows stay zero (they have no direction; every metric documents how it
    treats them)."""
    x64 = x.to(torch.float64)
    norm = torch.linalg.vector_norm(x64, dim=1)
    nonzero = norm > 0
    return x64 / torch.where(nonzero, norm, 1.0).unsqueeze(1), nonzero


def direction_groups(xh: Tensor) -> tuple[Tensor, Tensor]:
    """Group id of every row of ``xh`` (rows with bit-identical entries share a
    group) and the size of each row's group.

    Exact: rows are bucketed by an integer hash of their float64 bit patterns
    (order-independent, so identical rows always collide) and only rows in
    shared buckets are compared entry by entry."""
    n = xh.shape[0]
    bits = (xh + 0.0).contiguous().view(torch.int64)  # + 0.0 maps -0.0 to 0.0
    if xh.shape[1] <= 1 << 10:
        # signed 32-bit halves times 20-bit multipliers: |key| < 2**62, no overflow
        gen = torch.Generator().manual_seed(0x5EED)
        mult = torch.randint(1, 1 << 20, (2 * xh.shape[1],), generator=gen).to(xh.device)
        halves = bits.view(torch.int32)
        if xh.device.type == "cpu":  # numpy's exact integer product is fast
            key = torch.from_numpy(halves.numpy() @ mult.numpy())
        else:
            key = (halves * mult).sum(1)
        _, gid, counts = unique(key)
        shared = (counts[gid] > 1).nonzero().view(-1)
    else:  # wide rows: compare every row entry by entry
        gid = torch.zeros(n, dtype=torch.long, device=xh.device)
        shared = torch.arange(n, device=xh.device)
    if shared.numel():
        _, sub, _ = torch.unique(bits[shared], dim=0, return_inverse=True, return_counts=True)
        gid = gid.clone()
        gid[shared] = n + sub  # ids >= n cannot clash with bucket ids < n
    _, gid, counts = unique(gid)
    return gid, counts[gid]


def spans(total: int, step: int):
    """``slice(start, stop)`` over ``range(total)`` in steps of ``step``."""
    for start in range(0, total, step):
        yield slice(start, min(start + step, total))


def row_blocks(num_rows: int, row_len: int, chunk_size: int):
    """Slices of rows so that one block holds ``<= chunk_size`` entries (at
    least one row)."""
    return spans(num_rows, max(1, chunk_size // max(1, row_len)))


def tile_shape(num_rows: int, num_cols: int, chunk_size: int, max_rows: int = 512):
    """``(rows, cols)`` of a pairwise tile with ``<= chunk_size`` entries: up to
    ``max_rows`` rows (so each partner block is reused by many rows) and as
    many columns as the budget allows."""
    rows = max(1, min(num_rows, max_rows, chunk_size))
    return rows, max(1, min(num_cols, chunk_size // rows))


# -------------------------------------------------------------- sampling ---

def pick_sources(n: int, exact: bool | None, num_samples: int, seed: int,
                 device) -> tuple[Tensor, bool]:
    """Source rows of a row-sampled metric: all rows when exact, else
    ``num_samples`` rows drawn uniformly without replacement (fixed ``seed``).

    ``exact=None`` means exact iff ``n <= EXACT_MAX_NODES``; a sample that
    would cover every row is exact too. Returns ``(sorted indices, is_exact)``.
    """
    if exact is not None and not isinstance(exact, bool):
        raise UserError(f"exact must be True, False or None; got {exact!r}")
    check_positive("seed", seed, minimum=0)
    if exact is None:
        exact = n <= EXACT_MAX_NODES
    if exact or num_samples >= n:
        return torch.arange(n, device=device), True
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(n, generator=gen)[:num_samples].sort().values
    return idx.to(device), False


# ------------------------------------------------------------------- BFS ---

def _edge_positions(indptr: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR positions of all edges of ``nodes`` (concatenated), and the offset of
    each node's segment in that list. ``nodes`` must have degree > 0."""
    starts, lens = indptr[nodes], indptr[nodes + 1] - indptr[nodes]
    offsets = np.cumsum(lens) - lens
    return np.repeat(starts - offsets, lens) + np.arange(offsets[-1] + lens[-1]), offsets


def hop_balls(graph: Graph, sources: np.ndarray, radii: tuple[int, ...]) -> dict[int, np.ndarray]:
    """Balls ``{j : hop(source_b, j) <= r}`` of up to 64 sources, for each
    ``r >= 1`` in ``radii``.

    Level-synchronous BFS of all sources at once, one bit per source in a
    ``uint64`` word per node (the word table stays in cache). Each level
    *pushes* from the frontier while it is small and otherwise *pulls* into the
    nodes not yet reached by every source (a gather plus a
    ``bitwise_or.reduceat``); the search stops once no frontier is left.
    Returns, per radius, an ``[N]`` uint64 array whose bit ``b`` is set iff the
    node lies within ``r`` hops of ``sources[b]`` (a source is in its own ball).
    """
    indptr, indices = graph.csr
    n, nnz = graph.num_nodes, len(indices)
    one = np.uint64(1)
    bits = np.left_shift(one, np.arange(len(sources), dtype=np.uint64))
    everyone = np.bitwise_or.reduce(bits)
    seen = np.zeros(n, dtype=np.uint64)
    seen[sources] = bits
    frontier, balls = seen.copy(), {}
    linked = np.flatnonzero(np.diff(indptr))  # nodes with degree > 0
    for hop in range(1, max(radii) + 1):
        active = np.flatnonzero(frontier)
        if active.size:
            active = active[indptr[active + 1] > indptr[active]]
        if active.size and (indptr[active + 1] - indptr[active]).sum() * 8 < nnz:  # push
            pos, _ = _edge_positions(indptr, active)
            lens = indptr[active + 1] - indptr[active]
            target, word = indices[pos], np.repeat(frontier[active], lens)
            order = np.argsort(target, kind="stable")
            target, word = target[order], word[order]
            first = np.flatnonzero(np.r_[True, target[1:] != target[:-1]])
            frontier = np.zeros_like(seen)
            frontier[target[first]] = np.bitwise_or.reduceat(word, first)
        elif active.size:  # pull into the nodes some source has not reached yet
            todo = linked[seen[linked] != everyone]
            frontier_now, frontier = frontier, np.zeros_like(seen)
            if todo.size:
                if todo.size == linked.size:
                    pos, offsets = slice(None), indptr[todo] - indptr[todo[0]]
                else:
                    pos, offsets = _edge_positions(indptr, todo)
                frontier[todo] = np.bitwise_or.reduceat(frontier_now[indices[pos]], offsets)
        else:
            frontier = np.zeros_like(seen)
        frontier &= ~seen
        seen |= frontier
        if hop in radii:
            balls[hop] = seen.copy()
    return balls


def unpack_bits(packed: np.ndarray, count: int, device) -> Tensor:
    """Unpack uint64 words ``[..., m]`` into booleans ``[..., m, count]`` (bit
    ``b`` of a word becomes column ``b``)."""
    bytes_ = np.ascontiguousarray(packed).astype("<u8").view(np.uint8)
    bits = np.unpackbits(bytes_.reshape(*packed.shape, 8), axis=-1, count=count,
                         bitorder="little")
    return torch.from_numpy(bits.view(np.bool_)).to(device)
