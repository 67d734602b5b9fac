"""GPR-GNN (Chien, Peng, Li, Milenkovic, "Adaptive Universal Generalized
PageRank Graph Neural Network", ICLR 2021)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gnnmask.models.appnp import APPNPPropagation, PredictThenPropagate


class GPRGNN(PredictThenPropagate):
    r"""Generalized PageRank GNN (Chien et al. 2021): a two-layer MLP, then a
    learnt weighting of ``layers`` propagation steps, initialised as
    personalised PageRank.

    With :math:`Z = f(X)`: :math:`\sum_{k=0}^{K} \gamma_k S^k Z` over
    ``K = layers`` propagation steps with learnt weights :math:`\gamma_k`,
    initialised as personalised PageRank, :math:`\gamma_k = \alpha
    (1-\alpha)^k` and :math:`\gamma_K = (1-\alpha)^K` (the paper's PPR
    initialisation; ``alpha`` read always). The paper's extra dropout before
    the propagation is not offered.

    Under a mask-only method the :math:`\gamma_k` stay at their
    initialisation."""

    name = "gprgnn"
    reads = (*PredictThenPropagate.reads, "alpha")
    always_reads = ("alpha",)

    def build_propagation(self, out_dim, layers, options) -> None:
        self.step = APPNPPropagation(K=1, alpha=0.0, normalize=False)  # S h
        self.K = layers
        self.gamma = nn.Parameter(torch.empty(layers + 1))
        self._init_gamma(options["alpha"])

    def _init_gamma(self, alpha: float) -> None:
        k = torch.arange(self.K + 1, dtype=torch.float64)
        gamma = alpha * (1 - alpha) ** k
        gamma[-1] = (1 - alpha) ** self.K
        with torch.no_grad():
            self.gamma.copy_(gamma.to(self.gamma.dtype))

    def reset_parameters(self):
        super().reset_parameters()
        self._init_gamma(self.config["alpha"])

    def export_steps(self, ex) -> None:
        """The MLP, then ``sum_k gamma_k A^k z`` with the current weights."""
        self.export_mlp(ex)
        gamma = [float(g) for g in self.gamma.detach()]
        ex.step("axpby", "z", "out", a=gamma[0], b=0.0, other="z")
        for k in range(1, self.K + 1):
            ex.step("propagate", "z", "z")
            ex.step("axpby", "out", "out", a=1.0, b=gamma[k], other="z")

    def propagate_all(self, z: Tensor, *graph) -> Tensor:
        out = self.gamma[0] * z
        for k in range(1, self.K + 1):
            z = self.step(z, *graph)
            out = out + self.gamma[k] * z
        return out
