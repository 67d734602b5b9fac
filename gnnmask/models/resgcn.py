"""ResGCN with DeeperGCN's pre-activation residual blocks (Li, Xiong, Thabet,
Ghanem, "DeepGCNs: Can GCNs Go as Deep as CNNs?", ICCV 2019; Li, Xiong,
Thabet, Ghanem, "DeeperGCN: All You Need to Train Deeper GCNs", 2020)."""

from __future__ import annotations

from torch import Tensor, nn

from gnnmask.models.deep import DeepGNN, GCNLayer, dropout


class ResGCN(DeepGNN):
    r"""Residual GCN with DeeperGCN's ``res+`` blocks (Li et al. 2019, 2020):
    a linear input layer, ``layers`` GCN convolutions in pre-activation
    residual blocks, and a linear output layer.

    Each convolution but the first is in a block
    :math:`h \leftarrow h + \mathrm{GCN}(\mathrm{drop}(\sigma(\mathrm{norm}(h))))`
    (the ``res+`` block of PyG's
    :class:`~torch_geometric.nn.models.DeepGCNLayer`, computed here with the
    stack's own norms and activation; the first convolution is applied alone,
    as DeeperGCN does); a final normalisation and activation precede the
    output layer.

    The residual is the block's own, so it does not read ``residual``."""

    name = "resgcn"
    reads = ("dropout", "activation", "bias", "norm")
    graph_input = "gcn"

    def build_layers(self, in_dim, hidden, out_dim, layers, options) -> int:
        self.lin_in = nn.Linear(in_dim, hidden, bias=options["bias"])
        self.lin_out = nn.Linear(hidden, out_dim, bias=options["bias"])
        self.convs = nn.ModuleList(GCNLayer(hidden, hidden, bias=options["bias"], normalize=False)
                                   for _ in range(layers))
        return layers  # norms: before blocks 1 .. L-1, then the final one

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None,
                return_hidden: bool = False):
        """As :meth:`DeepGNN.forward`; ``hidden`` holds ``x`` and every
        block's output."""
        graph = self.graph(x, edge_index, edge_weight)
        hidden = [x]
        h = self.lin_in(dropout(x, self.dropout, self.training))
        for i, conv in enumerate(self.convs):
            if i == 0:
                h = conv(h, *graph)
            else:
                pre = self.act(self.norms[i - 1](h))
                h = h + conv(dropout(pre, self.dropout, self.training), *graph)
            h = self.hidden[i](h)
            if return_hidden:  # else every layer's state would stay alive to the end
                hidden.append(h)
        h = self.act(self.norms[-1](h))
        out = self.logits(self.lin_out(dropout(h, self.dropout, self.training)))
        return (out, hidden) if return_hidden else out
