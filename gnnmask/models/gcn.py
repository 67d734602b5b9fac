"""GCN (Kipf & Welling, "Semi-Supervised Classification with Graph
Convolutional Networks", ICLR 2017) as a deep stack."""

from __future__ import annotations

from torch import nn

from gnnmask.models.deep import DEGREES, DeepGNN, GCNLayer


class GCN(DeepGNN):
    """Graph convolutional network (Kipf & Welling 2017): ``layers`` GCN
    convolutions over the symmetric-normalised adjacency with self-loops.

    Propagates through a precomputed CSR matrix and its transpose
    (:class:`~gnnmask.models.deep.Adjacency`) and takes sparse CSR input
    features in its first layer.

    ``degree`` (:data:`~gnnmask.models.deep.DEGREES`) picks the degree of
    :math:`\\tilde D`: ``in`` (PyG's ``gcn_norm``, the default) or ``out``, the
    row sums of the weighted adjacency as the UGS code normalises its masked
    dense adjacency (Chen et al., ICML 2021): with edge weights
    :math:`w_{j \\to i}`, :math:`h'_i = \\sum_j d_i^{-1/2} w_{j \\to i}
    d_j^{-1/2} h_j` with :math:`d_i = 1 + \\sum_k w_{i \\to k}` instead of
    :math:`1 + \\sum_k w_{k \\to i}`. The same on an undirected, symmetrically
    weighted graph."""

    name = "gcn"
    reads = (*DeepGNN.reads, "degree")
    choices = {"degree": DEGREES}
    graph_input = "gcn"
    sparse_input = True

    def init_conv(self, in_dim: int, out_dim: int, *, last: bool, options: dict) -> nn.Module:
        return GCNLayer(in_dim, out_dim, bias=options["bias"], normalize=False)

    def export_steps(self, ex) -> None:
        """Each layer ``A (h W^T) + b``, propagated at the narrower of its two
        widths (``(A h) W^T`` when the layer widens: the same product, fewer
        MACs), then norm, activation and the residual of
        :meth:`~gnnmask.models.deep.DeepGNN.mix`."""
        h, first = "x", None
        for i, conv in enumerate(self.convs):
            z = f"z{i}"
            if conv.in_channels < conv.out_channels:
                ex.step("propagate", h, z)
                ex.linear(z, z, conv.lin.weight)
            else:
                ex.linear(h, z, conv.lin.weight)
                ex.step("propagate", z, z)
            ex.add(z, z, conv.bias)
            if i == len(self.convs) - 1:
                ex.step("copy", z, "out")
                break
            new = f"h{i}"
            ex.norm(self.norms[i], z, new)
            ex.act(self.act, new, new)
            if self.residual == "plain" and conv.in_channels == conv.out_channels:
                ex.step("axpby", new, new, a=1.0, b=1.0, other=h)
            elif self.residual == "initial" and first is not None:
                ex.step("axpby", new, new, a=1.0 - self.alpha, b=self.alpha, other=first)
            h = new
            first = h if first is None else first
