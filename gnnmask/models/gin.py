"""GIN (Xu et al., "How Powerful are Graph Neural Networks?", ICLR 2019) as
a deep stack."""

from __future__ import annotations

from torch import nn
from torch_geometric.nn import GINConv

from gnnmask.models.deep import DeepGNN


class GIN(DeepGNN):
    """Graph isomorphism network (Xu et al. 2019): ``layers``
    :class:`~torch_geometric.nn.conv.GINConv` layers, each a two-layer MLP
    (linear, ReLU, linear) of the summed neighbourhood."""

    name = "gin"

    def init_conv(self, in_dim: int, out_dim: int, *, last: bool, options: dict) -> nn.Module:
        bias = options["bias"]
        return GINConv(nn.Sequential(nn.Linear(in_dim, out_dim, bias=bias), nn.ReLU(),
                                     nn.Linear(out_dim, out_dim, bias=bias)))
