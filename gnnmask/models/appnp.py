"""APPNP (Gasteiger et al., "Predict then Propagate: Graph Neural Networks
meet Personalized PageRank", ICLR 2019)."""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import APPNP as APPNPConv

from gnnmask.models.deep import AdjDtype, DeepGNN, dropout


class APPNPPropagation(AdjDtype, APPNPConv):
    """PyG's :class:`~torch_geometric.nn.conv.APPNP` (Gasteiger et al. 2019)
    with the sparse product in the adjacency's dtype under autocast."""


class APPNP(DeepGNN):
    """APPNP (Gasteiger et al. 2019): a two-layer MLP, then ``layers``
    personalised-PageRank propagation steps with teleport ``alpha``.

    It has no hidden message-passing layers, so it reads neither ``norm`` nor
    ``residual``."""

    name = "appnp"
    reads = ("dropout", "activation", "bias", "alpha")
    always_reads = ("alpha",)
    graph_input = "normalized"

    def build_layers(self, in_dim, hidden, out_dim, layers, options) -> int:
        self.lin_in = nn.Linear(in_dim, hidden, bias=options["bias"])
        self.lin_out = nn.Linear(hidden, out_dim, bias=options["bias"])
        self.convs = nn.ModuleList()
        self.prop = APPNPPropagation(K=layers, alpha=options["alpha"], normalize=False)
        return 0

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None,
                return_hidden: bool = False):
        """As :meth:`DeepGNN.forward`; ``hidden`` holds ``x`` only (the
        propagation steps have no parameters and are not traced)."""
        graph = self.graph(x, edge_index, edge_weight)
        h = self.act(self.lin_in(dropout(x, self.dropout, self.training)))
        out = self.lin_out(dropout(h, self.dropout, self.training))
        out = self.logits(self.prop(out, *graph))
        return (out, [x]) if return_hidden else out
