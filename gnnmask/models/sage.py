"""GraphSAGE (Hamilton et al., "Inductive Representation Learning on Large
Graphs", NeurIPS 2017) as a deep stack."""

from __future__ import annotations

from torch import nn
from torch_geometric.nn import SAGEConv

from gnnmask.models.deep import DeepGNN


class SAGE(DeepGNN):
    """GraphSAGE (Hamilton et al. 2017): ``layers`` mean-aggregating
    :class:`~torch_geometric.nn.conv.SAGEConv` layers."""

    name = "sage"

    def init_conv(self, in_dim: int, out_dim: int, *, last: bool, options: dict) -> nn.Module:
        return SAGEConv(in_dim, out_dim, bias=options["bias"])
