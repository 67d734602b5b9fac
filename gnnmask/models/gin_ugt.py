"""GIN as the untrained-tickets code builds it (Huang et al., "You Can Have
Better Graph Neural Networks by Not Training Weights at All: Finding Untrained
GNNs Tickets", LoG 2022)."""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import GINConv

from gnnmask.models.deep import DeepGNN, dropout


class GINUGT(DeepGNN):
    r"""GIN with the layout of the untrained-tickets code (Huang et al. 2022):
    each layer is one linear map of the node plus the mean of its neighbours,
    then ReLU, and the output averages the last layer with a linear read-out of
    the last hidden state.

    .. math::
        h^{(l)} = \mathrm{ReLU}\Big(W_l \big(h^{(l-1)} + \tfrac{1}{|N(i)|}
        \textstyle\sum_{j \in N(i)} h^{(l-1)}_j\big)\Big), \qquad
        \hat y = \tfrac12 \big(W_r h^{(L-1)} + h^{(L)}\big)

    with :math:`h^{(0)} = x`, :math:`W_L` mapping to the classes and
    :math:`W_r` the read-out (masked like every weight; with one layer it reads
    :math:`x`). Dropout follows every ReLU, as in that code. It differs from
    :class:`~gnnmask.models.gin.GIN` (the GIN paper's layout) in the single
    linear layer instead of a two-layer MLP, the mean aggregation, the ReLU on
    the last layer's class outputs and the averaged read-out. PyG's
    :class:`~torch_geometric.nn.conv.GINConv` with ``eps = 0`` computes each
    layer. No normalisation or residual: reads ``dropout`` and ``bias`` (the
    code has no biases; mask-only methods turn them off).

    The reproduce entries ``ugt-gin-cora``, ``-citeseer`` and ``-pubmed``
    train it with the authors' recipe (``--preset ugt-paper``) against their
    accuracy-against-sparsity figure; docs/results/reproduce.md has the
    measured values. A dense re-implementation of that code's GIN path fed
    the same initial weights and scores selects the same model as this one
    (validation 0.672, test 0.691: Cora, seed 0). Under that recipe the logits stay
    close to zero throughout training (features row-normalised, no biases,
    binary masks: the training loss ends near 1.86 against ln 7 = 1.95 on
    Cora), and the test accuracy depends strongly on the draw of the
    weights: 0.667 to 0.792 over 10 seeds on Cora, so the entries use more
    seeds than the usual 3."""

    name = "gin-ugt"
    reads = ("dropout", "bias")

    def build_layers(self, in_dim, hidden, out_dim, layers, options) -> int:
        dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
        self.convs = nn.ModuleList(
            GINConv(nn.Linear(a, b, bias=options["bias"]), aggr="mean")
            for a, b in zip(dims[:-1], dims[1:]))
        self.lin_out = nn.Linear(dims[-2], out_dim, bias=options["bias"])
        return layers - 1

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None,
                return_hidden: bool = False):
        """As :meth:`DeepGNN.forward`; ``hidden`` holds ``x`` and the hidden
        states ``h^(1) .. h^(L-1)``."""
        graph = self.graph(x, edge_index, edge_weight)
        hidden = [x]
        h = x
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            z = dropout(self.act(conv(h, *graph)), self.dropout, self.training)
            if i == last:
                break
            h = self.hidden[i](self.mix(z, h, None, i))
            if return_hidden:
                hidden.append(h)
        out = self.logits((self.lin_out(h) + z) / 2)
        return (out, hidden) if return_hidden else out
