"""GAT (Veličković et al., "Graph Attention Networks", ICLR 2018) as a deep
stack."""

from __future__ import annotations

from torch import nn
from torch_geometric.nn import GATConv

from gnnmask.errors import UserError
from gnnmask.models.deep import DeepGNN


class GAT(DeepGNN):
    """Graph attention network (Veličković et al. 2018): ``layers``
    :class:`~torch_geometric.nn.conv.GATConv` layers; hidden layers
    concatenate ``heads`` heads of ``hidden / heads`` channels, the output
    layer has one head. ``attention_dropout`` drops normalised attention
    coefficients in training (the paper: 0.6, beside dropout 0.6 on every
    layer's input)."""

    name = "gat"
    reads = (*DeepGNN.reads, "heads", "attention_dropout")

    @classmethod
    def check_options(cls, options: dict, spell=lambda key: key,
                      hidden: int | None = None) -> None:
        super().check_options(options, spell, hidden)
        heads = options.get("heads", 1)
        if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
            raise UserError(f"{spell('heads')} {heads!r} is invalid; allowed: a positive "
                            "integer")
        p = options.get("attention_dropout", 0.0)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise UserError(f"{spell('attention_dropout')} {p!r} is invalid; allowed: "
                            "0 <= p < 1")
        if isinstance(hidden, int) and hidden % heads:
            raise UserError(f"{spell('hidden')} {hidden} is not divisible by "
                            f"{spell('heads')} {heads}; allowed: a multiple of it")

    def init_conv(self, in_dim: int, out_dim: int, *, last: bool, options: dict) -> nn.Module:
        heads = 1 if last else options["heads"]
        return GATConv(in_dim, out_dim // heads, heads=heads, bias=options["bias"],
                       dropout=float(options["attention_dropout"]))
