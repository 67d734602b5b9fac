"""Mini-batches by neighbour sampling, for graphs too large for full-batch training.

:func:`neighbor_loader` builds PyG's :class:`~torch_geometric.loader.NodeLoader`
over the training nodes with uniform neighbour sampling (GraphSAGE, Hamilton
et al., NeurIPS 2017: hop by hop, every node draws up to ``k`` of its
in-neighbours without replacement). The sampler is PyG's own
:class:`~torch_geometric.sampler.NeighborSampler` (i.e. ``NeighborLoader``)
where its compiled backend is installed (``pyg-lib`` or ``torch-sparse``,
neither of which PyPI ships as a binary), else :class:`UniformNeighborSampler`,
the same sampling written with PyTorch tensor operations. Each batch is a
``Data`` with the sampled subgraph (edges from sampled neighbours to the
nodes that drew them), ``n_id`` (the global ids) and ``batch_size`` (the
seed nodes come first).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.sampler import BaseSampler, NodeSamplerInput, SamplerOutput

from gnnmask.errors import UserError


def parse_fanout(text: str, layers: int) -> list[int]:
    """``"10"`` or ``"15,10,5"`` as one fan-out per layer (the last repeated;
    ``-1``: every neighbour)."""
    try:
        values = [int(p) for p in str(text).split(",")]
    except ValueError:
        values = []
    if not values or any(v == 0 or v < -1 for v in values):
        raise UserError(f"--num-neighbors {text!r} is invalid; allowed: positive integers or "
                        "-1 (all), one per layer or one for every layer, e.g. 10 or 15,10")
    return (values + values[-1:] * layers)[:layers]


class UniformNeighborSampler(BaseSampler):
    """Uniform neighbour sampling without replacement, in PyTorch only."""

    def __init__(self, edge_index: Tensor, num_nodes: int, num_neighbors: list[int],
                 seed: int = 0):
        dst = edge_index[1]
        self.perm = torch.argsort(dst, stable=True)  # incoming edges grouped by node
        self.src = edge_index[0][self.perm]
        counts = torch.bincount(dst, minlength=num_nodes)
        self.ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        self.num_nodes = num_nodes
        self.num_neighbors = list(num_neighbors)
        self.gen = torch.Generator().manual_seed(int(seed))

    def _draw(self, frontier: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """Up to ``k`` incoming edges of each frontier node: ``(edge positions
        in the sorted order, index of the frontier node)``."""
        start, deg = self.ptr[frontier], self.ptr[frontier + 1] - self.ptr[frontier]
        before = deg.cumsum(0) - deg  # edges of the earlier frontier nodes (empty if none)
        owner = torch.repeat_interleave(torch.arange(frontier.numel()), deg)
        first = torch.repeat_interleave(start - before, deg)
        pos = first + torch.arange(owner.numel())
        if k < 0:
            return pos, owner
        # one sort: by owner, in random order within each owner's edges
        keys = owner.to(torch.float64) + torch.rand(pos.numel(), generator=self.gen,
                                                    dtype=torch.float64)
        order = torch.argsort(keys)
        rank = torch.arange(order.numel()) - torch.repeat_interleave(before, deg)
        chosen = order[rank < k]
        return pos[chosen], owner[chosen]

    def sample_from_nodes(self, index: NodeSamplerInput, **kwargs) -> SamplerOutput:
        seeds = index.node.cpu()
        local = torch.full((self.num_nodes,), -1, dtype=torch.long)
        local[seeds] = torch.arange(seeds.numel())
        nodes, frontier = [seeds], seeds
        rows, cols, edges, n_nodes, n_edges = [], [], [], [seeds.numel()], []
        for k in self.num_neighbors:
            pos, owner = self._draw(frontier, k)
            src = self.src[pos]
            new = torch.unique(src[local[src] < 0])
            local[new] = torch.arange(new.numel()) + sum(n_nodes)
            rows.append(local[src])
            cols.append(local[frontier[owner]])
            edges.append(self.perm[pos])
            nodes.append(new)
            n_nodes.append(new.numel())
            n_edges.append(pos.numel())
            frontier = new
        return SamplerOutput(node=torch.cat(nodes), row=torch.cat(rows), col=torch.cat(cols),
                             edge=torch.cat(edges), num_sampled_nodes=n_nodes,
                             num_sampled_edges=n_edges, metadata=(index.input_id, index.time))

    def sample_from_edges(self, index, **kwargs):
        raise NotImplementedError("UniformNeighborSampler samples from nodes only")


def neighbor_loader(data, input_nodes: Tensor, num_neighbors: list[int], batch_size: int,
                    seed: int = 0, shuffle: bool = True):
    """PyG's ``NodeLoader`` over ``input_nodes`` with uniform neighbour
    sampling (PyG's compiled sampler where installed, else
    :class:`UniformNeighborSampler`); shuffled from ``seed``."""
    import torch_geometric.typing as pyg_typing
    from torch_geometric.loader import NodeLoader

    if pyg_typing.WITH_PYG_LIB or pyg_typing.WITH_TORCH_SPARSE:
        from torch_geometric.sampler import NeighborSampler

        sampler = NeighborSampler(data, num_neighbors=num_neighbors)
    else:
        sampler = UniformNeighborSampler(data.edge_index.cpu(), data.num_nodes, num_neighbors,
                                         seed)
    gen = torch.Generator().manual_seed(int(seed))
    return NodeLoader(data, node_sampler=sampler, input_nodes=input_nodes.cpu(),
                      batch_size=batch_size, shuffle=shuffle, generator=gen)
