"""JKNet (Xu, Li, Tian, Sonobe, Kawarabayashi, Jegelka, "Representation
Learning on Graphs with Jumping Knowledge Networks", ICML 2018)."""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import JumpingKnowledge

from gnnmask.models.deep import DeepGNN, GCNLayer, dropout

#: Jumping-knowledge aggregations (PyG's ``JumpingKnowledge`` modes).
JK_MODES = ("cat", "max", "lstm")


class JKNet(DeepGNN):
    """Jumping knowledge network (Xu et al. 2018): ``layers`` GCN convolutions
    of width ``hidden``, every layer's output aggregated by ``jk`` (``cat``:
    concatenation, ``max``: element-wise maximum, ``lstm``: attention over the
    layers from a bi-LSTM; PyG's
    :class:`~torch_geometric.nn.models.JumpingKnowledge`), then a linear layer
    to the classes. Reads ``jk`` besides the stack's options."""

    name = "jknet"
    reads = (*DeepGNN.reads, "jk")
    choices = {"jk": JK_MODES}
    graph_input = "gcn"
    sparse_input = True

    def build_layers(self, in_dim, hidden, out_dim, layers, options) -> int:
        dims = [in_dim] + [hidden] * layers
        self.convs = nn.ModuleList(GCNLayer(a, b, bias=options["bias"], normalize=False)
                                   for a, b in zip(dims[:-1], dims[1:]))
        mode = options["jk"]
        self.jk = JumpingKnowledge(mode, channels=hidden, num_layers=layers)
        self.lin_out = nn.Linear(hidden * layers if mode == "cat" else hidden, out_dim,
                                 bias=options["bias"])
        return layers

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None,
                return_hidden: bool = False):
        """As :meth:`DeepGNN.forward`; ``hidden`` holds ``x`` and every
        convolution's output (all of them reach the aggregation)."""
        graph = self.graph(x, edge_index, edge_weight)
        hidden = [x]
        h, first = x, None
        for i, conv in enumerate(self.convs):
            z = conv(dropout(h, self.dropout, self.training), *graph)
            h = self.hidden[i](self.mix(self.act(self.norms[i](z)), h, first, i))
            first = h if first is None else first
            hidden.append(h)
        out = self.jk(hidden[1:])
        out = self.logits(self.lin_out(dropout(out, self.dropout, self.training)))
        return (out, hidden) if return_hidden else out
