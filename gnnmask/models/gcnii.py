"""GCNII (Chen et al., "Simple and Deep Graph Convolutional Networks", ICML
2020)."""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import GCN2Conv

from gnnmask.models.deep import AdjDtype, DeepGNN, dropout


class GCNIILayer(AdjDtype, GCN2Conv):
    """PyG's :class:`~torch_geometric.nn.conv.GCN2Conv` (Chen et al. 2020)
    with the sparse product in the adjacency's dtype under autocast."""


class GCNII(DeepGNN):
    """GCNII (Chen et al. 2020): a linear input layer, ``layers`` GCN2Conv
    layers with initial residual ``alpha`` and identity mapping of strength
    ``theta / l``, and a linear output layer.

    Its initial residual is part of every layer, so ``residual`` may only add a
    plain skip (``none`` or ``plain``)."""

    name = "gcnii"
    reads = ("dropout", "activation", "bias", "norm", "residual", "alpha", "theta")
    residuals = ("none", "plain")
    always_reads = ("alpha", "theta")
    graph_input = "normalized"
    conv_decay = True  # the paper's code: 0.01 on the convolutions, 5e-4 on the rest

    def build_layers(self, in_dim, hidden, out_dim, layers, options) -> int:
        self.lin_in = nn.Linear(in_dim, hidden, bias=options["bias"])
        self.lin_out = nn.Linear(hidden, out_dim, bias=options["bias"])
        self.convs = nn.ModuleList(
            GCNIILayer(hidden, options["alpha"], options["theta"], layer=i + 1,
                       normalize=False) for i in range(layers))
        return layers

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None,
                return_hidden: bool = False):
        """As :meth:`DeepGNN.forward`; ``hidden`` holds ``x`` and the state
        after each GCN2Conv layer."""
        graph = self.graph(x, edge_index, edge_weight)
        hidden = [x]
        h = x0 = self.act(self.lin_in(dropout(x, self.dropout, self.training)))
        for i, conv in enumerate(self.convs):
            z = conv(dropout(h, self.dropout, self.training), x0, *graph)
            h = self.hidden[i](self.mix(self.act(self.norms[i](z)), h, None, i))
            hidden.append(h)
        out = self.logits(self.lin_out(dropout(h, self.dropout, self.training)))
        return (out, hidden) if return_hidden else out
