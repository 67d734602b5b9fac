"""Small graphs and models for the mask tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric.nn import GCNConv

N_NODES, F_IN = 24, 6


class Stack(nn.Module):
    """A few GCNConv layers with a uniform ``forward(x, edge_index)``."""

    def __init__(self, dims=(F_IN, 16, 16, 3), bias=True):
        super().__init__()
        self.convs = nn.ModuleList(GCNConv(a, b, bias=bias) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x, edge_index):
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            x = x.relu() if i < len(self.convs) - 1 else x
        return x


@pytest.fixture
def graph():
    g = torch.Generator().manual_seed(123)
    x = torch.randn(N_NODES, F_IN, generator=g)
    edge_index = torch.randint(0, N_NODES, (2, 80), generator=g)
    return x, edge_index


@pytest.fixture
def stack():
    """``stack(dims=..., bias=...)`` builds a :class:`Stack` under seed 0."""

    def build(dims=(F_IN, 16, 16, 3), bias=True):
        torch.manual_seed(0)
        return Stack(dims, bias)

    return build
