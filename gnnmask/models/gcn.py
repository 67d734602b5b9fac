"""GCN (Kipf & Welling, "Semi-Supervised Classification with Graph
Convolutional Networks", ICLR 2017) as a deep stack."""

from __future__ import annotations

from torch import nn

from gnnmask.models.deep import DeepGNN, GCNLayer


class GCN(DeepGNN):
    """Graph convolutional network (Kipf & Welling 2017): ``layers`` GCN
    convolutions over the symmetric-normalised adjacency with self-loops.

    Propagates through a precomputed CSR matrix and its transpose
    (:class:`~gnnmask.models.deep.Adjacency`) and takes sparse CSR input
    features in its first layer."""

    name = "gcn"
    graph_input = "gcn"
    sparse_input = True

    def init_conv(self, in_dim: int, out_dim: int, *, last: bool, options: dict) -> nn.Module:
        return GCNLayer(in_dim, out_dim, bias=options["bias"], normalize=False)
