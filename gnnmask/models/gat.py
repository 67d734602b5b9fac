"""GAT (Veličković et al., "Graph Attention Networks", ICLR 2018) as a deep
stack."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATConv
from torch_geometric.typing import SparseTensor, torch_sparse
from torch_geometric.utils import add_self_loops, remove_self_loops

from gnnmask.errors import UserError
from gnnmask.models.deep import DeepGNN, dropout, sparse_features

#: Where GAT's dropout acts (:class:`GAT`).
GAT_DROPOUTS = ("inputs", "heads")


class GATHeadsConv(GATConv):
    r""":class:`~torch_geometric.nn.conv.GATConv` whose heads drop their
    inputs and their transformed features as the GAT code's attention head
    does (``utils/layers.py``, ``attn_head``). In training, head ``k`` computes

    .. math::
        z_k = \mathrm{drop}_k(X)\,W_k^\top, \qquad
        \alpha_{ij}^{(k)} = \mathrm{softmax}_j\big(\mathrm{LeakyReLU}(
        a_{k,\mathrm{dst}}^\top z_{k,i} + a_{k,\mathrm{src}}^\top z_{k,j})\big),
        \qquad
        x'_{k,i} = \sum_{j \in \mathcal N(i) \cup \{i\}}
        \mathrm{drop}(\alpha_{ij}^{(k)})\, \mathrm{drop}'_k(z_k)_j,

    with an independent draw of ``head_dropout`` per head on the input
    (:math:`\mathrm{drop}_k`), a second one on the transformed features after
    the attention logits were taken from them (:math:`\mathrm{drop}'_k`), and
    PyG's ``dropout`` on the attention coefficients. A model around PyG's
    layer drops the layer's input once, for every head, and the transformed
    features not at all. In evaluation the two are the same layer, with the
    same parameters and ``state_dict`` keys. (The code's attention
    projections also carry a bias each, a shift of every logit before the
    LeakyReLU; PyG's, and so this layer's, do not.)"""

    def __init__(self, *args, head_dropout: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        if self.res is not None or self.lin is None or self.edge_dim is not None:
            raise ValueError("GATHeadsConv takes one input width and no residual or edge "
                             "features; allowed: GATConv(in_channels: int, out_channels, "
                             "heads, concat, dropout, bias)")
        self.head_dropout = float(head_dropout)

    def forward(self, x: Tensor, edge_index) -> Tensor:
        p = self.head_dropout
        if not self.training or p == 0.0:
            return super().forward(x, edge_index)
        heads, c = self.heads, self.out_channels
        w = self.lin.weight  # [heads * c, in]; the masked weight under a parametrisation
        # bag-of-words inputs (at most 5% non-zero) as CSR: each head draws among
        # the stored entries only (zeros stay zero either way)
        xs = sparse_features(x)
        z = torch.stack([dropout(xs, p, True) @ w[k * c:(k + 1) * c].t()
                         for k in range(heads)], dim=1)  # [N, heads, c]
        alpha = ((z * self.att_src).sum(-1), (z * self.att_dst).sum(-1))
        if self.add_self_loops:
            if isinstance(edge_index, SparseTensor):
                edge_index = torch_sparse.set_diag(edge_index)
            else:
                edge_index = add_self_loops(remove_self_loops(edge_index)[0],
                                            num_nodes=z.size(0))[0]
        alpha = self.edge_updater(edge_index, alpha=alpha, edge_attr=None, size=None)
        z = dropout(z, p, True)
        out = self.propagate(edge_index, x=(z, z), alpha=alpha, size=None)
        out = out.view(-1, heads * c) if self.concat else out.mean(dim=1)
        return out if self.bias is None else out + self.bias

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, head_dropout={self.head_dropout})"


class GAT(DeepGNN):
    """Graph attention network (Veličković et al. 2018): ``layers``
    :class:`~torch_geometric.nn.conv.GATConv` layers; hidden layers
    concatenate ``heads`` heads of ``hidden / heads`` channels, the output
    layer averages ``output_heads`` heads (the paper: 1, and 8 on PubMed).
    ``attention_dropout`` drops normalised attention
    coefficients in training (the paper: 0.6, beside dropout 0.6 on every
    layer's input).

    ``gat_dropout`` places the dropout of probability ``dropout``:

    * ``inputs`` (the default; PyG's GAT example, ``examples/gat.py``): one
      draw on each layer's input, shared by its heads.
    * ``heads`` (the GAT code's): every head draws its own dropout of the
      layer's input and drops its transformed features once more before
      aggregating them (:class:`GATHeadsConv`).

    The two are the same network in evaluation. ``inputs`` stays the default
    because the depth x sparsity study's GAT cells were measured with it."""

    name = "gat"
    reads = (*DeepGNN.reads, "heads", "output_heads", "attention_dropout", "gat_dropout")
    choices = {"gat_dropout": GAT_DROPOUTS}

    @classmethod
    def check_options(cls, options: dict, spell=lambda key: key,
                      hidden: int | None = None) -> None:
        super().check_options(options, spell, hidden)
        heads = options.get("heads", 1)
        for key in ("heads", "output_heads"):
            value = options.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{spell(key)} {value!r} is invalid; allowed: a positive "
                                "integer")
        p = options.get("attention_dropout", 0.0)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise UserError(f"{spell('attention_dropout')} {p!r} is invalid; allowed: "
                            "0 <= p < 1")
        if isinstance(hidden, int) and hidden % heads:
            raise UserError(f"{spell('hidden')} {hidden} is not divisible by "
                            f"{spell('heads')} {heads}; allowed: a multiple of it")

    def __init__(self, *args, **options):
        super().__init__(*args, **options)
        if self.config["gat_dropout"] == "heads":
            self.dropout = 0.0  # the convolutions drop their inputs, head by head

    def init_conv(self, in_dim: int, out_dim: int, *, last: bool, options: dict) -> nn.Module:
        # hidden layers concatenate their heads, the output layer averages them
        heads = options["output_heads"] if last else options["heads"]
        kwargs = dict(heads=heads, concat=not last, bias=options["bias"],
                      dropout=float(options["attention_dropout"]))
        width = out_dim if last else out_dim // heads
        if options["gat_dropout"] == "heads":
            return GATHeadsConv(in_dim, width, head_dropout=options["dropout"], **kwargs)
        return GATConv(in_dim, width, **kwargs)
