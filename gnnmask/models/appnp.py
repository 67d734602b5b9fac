"""APPNP (Gasteiger et al., "Predict then Propagate: Graph Neural Networks
meet Personalized PageRank", ICLR 2019), and the base class of every
predict-then-propagate backbone."""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import APPNP as APPNPConv

from gnnmask.models.deep import Adjacency, AdjDtype, DeepGNN, dropout, propagate


class APPNPPropagation(AdjDtype, APPNPConv):
    """PyG's :class:`~torch_geometric.nn.conv.APPNP` (Gasteiger et al. 2019)
    with the sparse product in the adjacency's dtype under autocast, that also
    accepts an :class:`~gnnmask.models.deep.Adjacency`: ``K`` steps
    :math:`z \\leftarrow (1 - \\alpha)\\,\\hat A z + \\alpha\\,z^{(0)}` in
    ``APPNP``'s order of operations, each backward step through the
    precomputed transpose. Any other graph input takes ``APPNP``'s own path,
    and so does edge dropout (``dropout > 0``, on the CSR matrix ``adj_t``).
    An :class:`~gnnmask.models.deep.Adjacency` is already normalised: build
    the layer with ``normalize=False``."""

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None) -> Tensor:
        if not isinstance(edge_index, Adjacency):
            return super().forward(x, edge_index, edge_weight)
        if self.dropout > 0 and self.training:  # APPNP's edge dropout on the CSR matrix
            return super().forward(x, edge_index.adj_t, edge_weight)
        h = x
        for _ in range(self.K):
            x = propagate(x, edge_index)
            x = x * (1 - self.alpha)
            x = x + self.alpha * h
        return x


class PredictThenPropagate(DeepGNN):
    """Base of the backbones that predict with a two-layer MLP, then
    propagate the predictions without parameters over ``layers`` steps of
    the normalised adjacency (:meth:`propagate_all`). They have no hidden
    message-passing layer, so they read neither ``norm`` nor ``residual`` and
    ``hidden`` holds ``x`` only (the propagation steps are not traced)."""

    reads = ("dropout", "activation", "bias")
    graph_input = "gcn"

    def build_layers(self, in_dim, hidden, out_dim, layers, options) -> int:
        self.lin_in = nn.Linear(in_dim, hidden, bias=options["bias"])
        self.lin_out = nn.Linear(hidden, out_dim, bias=options["bias"])
        self.convs = nn.ModuleList()
        self.build_propagation(out_dim, layers, options)
        return 0

    def build_propagation(self, out_dim: int, layers: int, options: dict) -> None:
        """Create what :meth:`propagate_all` needs."""
        raise NotImplementedError

    def propagate_all(self, z: Tensor, *graph) -> Tensor:
        """The class scores from the MLP's predictions ``z``."""
        raise NotImplementedError

    def export_mlp(self, ex) -> None:
        """Export steps of the two-layer MLP, from ``x`` to register ``z``."""
        ex.linear("x", "h", self.lin_in.weight, self.lin_in.bias)
        ex.act(self.act, "h", "h")
        ex.linear("h", "z", self.lin_out.weight, self.lin_out.bias)

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None,
                return_hidden: bool = False):
        """As :meth:`DeepGNN.forward`; ``hidden`` holds ``x`` only."""
        graph = self.graph(x, edge_index, edge_weight)
        h = self.act(self.lin_in(dropout(x, self.dropout, self.training)))
        z = self.lin_out(dropout(h, self.dropout, self.training))
        out = self.logits(self.propagate_all(z, *graph))
        return (out, [x]) if return_hidden else out


class APPNP(PredictThenPropagate):
    """APPNP (Gasteiger et al. 2019): a two-layer MLP, then ``layers``
    personalised-PageRank propagation steps with teleport ``alpha``."""

    name = "appnp"
    reads = (*PredictThenPropagate.reads, "alpha")
    always_reads = ("alpha",)

    def build_propagation(self, out_dim, layers, options) -> None:
        self.prop = APPNPPropagation(K=layers, alpha=options["alpha"], normalize=False)

    def propagate_all(self, z: Tensor, *graph) -> Tensor:
        return self.prop(z, *graph)

    def export_steps(self, ex) -> None:
        """The MLP, then ``K`` steps ``z = (1 - alpha) A z + alpha z0``."""
        self.export_mlp(ex)
        ex.step("copy", "z", "z0")
        for _ in range(self.prop.K):
            ex.step("propagate", "z", "p")
            ex.step("axpby", "p", "z", a=1.0 - self.prop.alpha, b=self.prop.alpha, other="z0")
        ex.step("copy", "z", "out")
