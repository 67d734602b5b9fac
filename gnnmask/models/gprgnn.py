"""GPR-GNN (Chien, Peng, Li, Milenkovic, "Adaptive Universal Generalized
PageRank Graph Neural Network", ICLR 2021)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gnnmask.models.appnp import APPNPPropagation
from gnnmask.models.deep import DeepGNN, dropout


class GPRGNN(DeepGNN):
    r"""Generalized PageRank GNN (Chien et al. 2021): a two-layer MLP, then a
    learnt weighting of ``layers`` propagation steps, initialised as
    personalised PageRank.

    With :math:`Z = f(X)`: :math:`\sum_{k=0}^{K} \gamma_k S^k Z` over
    ``K = layers`` propagation steps with learnt weights :math:`\gamma_k`,
    initialised as personalised PageRank, :math:`\gamma_k = \alpha
    (1-\alpha)^k` and :math:`\gamma_K = (1-\alpha)^K` (the paper's PPR
    initialisation; ``alpha`` read always).

    The propagation steps have no parameters and are not traced; under a
    mask-only method the :math:`\gamma_k` stay at their initialisation."""

    name = "gprgnn"
    reads = ("dropout", "activation", "bias", "alpha")
    always_reads = ("alpha",)
    graph_input = "normalized"

    def build_layers(self, in_dim, hidden, out_dim, layers, options) -> int:
        self.lin_in = nn.Linear(in_dim, hidden, bias=options["bias"])
        self.lin_out = nn.Linear(hidden, out_dim, bias=options["bias"])
        self.convs = nn.ModuleList()
        self.step = APPNPPropagation(K=1, alpha=0.0, normalize=False)  # S h
        self.K = layers
        self.gamma = nn.Parameter(torch.empty(layers + 1))
        self._init_gamma(options["alpha"])
        return 0

    def _init_gamma(self, alpha: float) -> None:
        k = torch.arange(self.K + 1, dtype=torch.float64)
        gamma = alpha * (1 - alpha) ** k
        gamma[-1] = (1 - alpha) ** self.K
        with torch.no_grad():
            self.gamma.copy_(gamma.to(self.gamma.dtype))

    def reset_parameters(self):
        super().reset_parameters()
        self._init_gamma(self.config["alpha"])

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None,
                return_hidden: bool = False):
        """As :meth:`DeepGNN.forward`; ``hidden`` holds ``x`` only."""
        graph = self.graph(x, edge_index, edge_weight)
        h = self.act(self.lin_in(dropout(x, self.dropout, self.training)))
        z = self.lin_out(dropout(h, self.dropout, self.training))
        out = self.gamma[0] * z
        for k in range(1, self.K + 1):
            z = self.step(z, *graph)
            out = out + self.gamma[k] * z
        out = self.logits(out)
        return (out, [x]) if return_hidden else out
