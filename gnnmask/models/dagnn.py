"""DAGNN (Liu, Gao, Ji, "Towards Deeper Graph Neural Networks", KDD 2020)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gnnmask.models.appnp import APPNPPropagation
from gnnmask.models.deep import DeepGNN, dropout


class DAGNN(DeepGNN):
    r"""Deep adaptive GNN (Liu et al. 2020): a two-layer MLP, ``layers``
    parameter-free propagation steps, and a learnt node-wise retention score
    for each step.

    With :math:`Z = f(X)`, the stack :math:`H = [Z, SZ, \ldots, S^K Z]`
    (``K = layers``) is combined adaptively,
    :math:`\sum_k \sigma(H_k s)\, H_k` with one learnt projection
    :math:`s \in \mathbb{R}^{C}` scoring each node's retention of each
    step (:math:`\sigma`: the logistic function).

    The propagation steps are not traced; under a mask-only method ``s``
    stays at its initialisation."""

    name = "dagnn"
    reads = ("dropout", "activation", "bias")
    graph_input = "normalized"

    def build_layers(self, in_dim, hidden, out_dim, layers, options) -> int:
        self.lin_in = nn.Linear(in_dim, hidden, bias=options["bias"])
        self.lin_out = nn.Linear(hidden, out_dim, bias=options["bias"])
        self.convs = nn.ModuleList()
        self.step = APPNPPropagation(K=1, alpha=0.0, normalize=False)  # S h
        self.K = layers
        self.retain = nn.Linear(out_dim, 1, bias=options["bias"])
        return 0

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None,
                return_hidden: bool = False):
        """As :meth:`DeepGNN.forward`; ``hidden`` holds ``x`` only."""
        graph = self.graph(x, edge_index, edge_weight)
        h = self.act(self.lin_in(dropout(x, self.dropout, self.training)))
        z = self.lin_out(dropout(h, self.dropout, self.training))
        steps = [z]
        for _ in range(self.K):
            steps.append(self.step(steps[-1], *graph))
        stack = torch.stack(steps, dim=1)  # [N, K + 1, C]
        score = torch.sigmoid(self.retain(stack))  # [N, K + 1, 1]
        out = self.logits((score * stack).sum(dim=1))
        return (out, [x]) if return_hidden else out
