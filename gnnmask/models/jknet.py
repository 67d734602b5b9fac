"""JKNet (Xu, Li, Tian, Sonobe, Kawarabayashi, Jegelka, "Representation
Learning on Graphs with Jumping Knowledge Networks", ICML 2018)."""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import JumpingKnowledge

from gnnmask.models.deep import DeepGNN, GCNLayer, dropout

#: Jumping-knowledge aggregations (PyG's ``JumpingKnowledge`` modes).
JK_MODES = ("cat", "max", "lstm")
#: Where JKNet's dropout acts (:class:`JKNet`).
JK_DROPOUTS = ("inputs", "outputs")


class JKNet(DeepGNN):
    r"""Jumping knowledge network (Xu et al. 2018): ``layers`` GCN convolutions
    of width ``hidden``, every layer's output aggregated by ``jk`` (``cat``:
    concatenation, ``max``: element-wise maximum, ``lstm``: attention over the
    layers from a bi-LSTM; PyG's
    :class:`~torch_geometric.nn.models.JumpingKnowledge`), then a linear layer
    to the classes. Reads ``jk`` and ``jk_dropout`` besides the stack's
    options.

    ``jk_dropout`` places the dropout:

    * ``inputs`` (the default): before every convolution, the raw features
      included, and once more, an independent draw, on the aggregation before
      the output layer: :math:`h_l = \sigma(\mathrm{conv}_l(\mathrm{drop}(h_{l-1})))`,
      :math:`y = W\,\mathrm{drop}(\mathrm{JK}(h_1, \ldots, h_L))`.
    * ``outputs``: after every layer's activation, one draw whose result is
      the layer's output everywhere downstream (the next convolution and the
      aggregation); the raw features and the aggregation are not dropped:
      :math:`\tilde h_l = \mathrm{drop}(\sigma(\mathrm{conv}_l(\tilde h_{l-1})))`,
      :math:`y = W\,\mathrm{JK}(\tilde h_1, \ldots, \tilde h_L)`. This is
      PyG's :class:`~torch_geometric.nn.models.BasicGNN` with ``jk`` and the
      JKNet of the Bag of Tricks benchmark code (Chen et al., TPAMI 2022).

    The two are the same network in evaluation. ``inputs`` stays the default
    because the depth x sparsity study's JKNet cells were measured with it."""

    name = "jknet"
    reads = (*DeepGNN.reads, "jk", "jk_dropout")
    choices = {"jk": JK_MODES, "jk_dropout": JK_DROPOUTS}
    graph_input = "gcn"
    sparse_input = True

    def build_layers(self, in_dim, hidden, out_dim, layers, options) -> int:
        dims = [in_dim] + [hidden] * layers
        self.convs = nn.ModuleList(GCNLayer(a, b, bias=options["bias"], normalize=False)
                                   for a, b in zip(dims[:-1], dims[1:]))
        mode = options["jk"]
        self.drop_outputs = options["jk_dropout"] == "outputs"
        self.jk = JumpingKnowledge(mode, channels=hidden, num_layers=layers)
        self.lin_out = nn.Linear(hidden * layers if mode == "cat" else hidden, out_dim,
                                 bias=options["bias"])
        return layers

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None,
                return_hidden: bool = False):
        """As :meth:`DeepGNN.forward`; ``hidden`` holds ``x`` and every
        layer's output (all of them reach the aggregation), before the dropout
        of ``jk_dropout="outputs"``."""
        graph = self.graph(x, edge_index, edge_weight)
        hidden, outputs = [x], []
        h, first = x, None
        p = self.dropout
        for i, conv in enumerate(self.convs):
            z = conv(h if self.drop_outputs else dropout(h, p, self.training), *graph)
            h = self.hidden[i](self.mix(self.act(self.norms[i](z)), h, first, i))
            hidden.append(h)
            if self.drop_outputs:
                h = dropout(h, p, self.training)
            first = h if first is None else first
            outputs.append(h)
        out = self.jk(outputs)
        if not self.drop_outputs:
            out = dropout(out, p, self.training)
        out = self.logits(self.lin_out(out))
        return (out, hidden) if return_hidden else out
