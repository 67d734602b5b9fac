"""DAGNN (Liu, Gao, Ji, "Towards Deeper Graph Neural Networks", KDD 2020)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gnnmask.models.appnp import APPNPPropagation, PredictThenPropagate


class DAGNN(PredictThenPropagate):
    r"""Deep adaptive GNN (Liu et al. 2020): a two-layer MLP, ``layers``
    parameter-free propagation steps, and a learnt node-wise retention score
    for each step.

    With :math:`Z = f(X)`, the stack :math:`H = [Z, SZ, \ldots, S^K Z]`
    (``K = layers``) is combined adaptively,
    :math:`\sum_k \sigma(H_k s)\, H_k` with one learnt projection
    :math:`s \in \mathbb{R}^{C}` scoring each node's retention of each
    step (:math:`\sigma`: the logistic function). Under a mask-only method
    ``s`` is masked like any weight and stays frozen."""

    name = "dagnn"

    def build_propagation(self, out_dim, layers, options) -> None:
        self.step = APPNPPropagation(K=1, alpha=0.0, normalize=False)  # S h
        self.K = layers
        self.retain = nn.Linear(out_dim, 1, bias=options["bias"])

    def export_steps(self, ex) -> None:
        """The MLP, then ``sum_k sigmoid(A^k z s) A^k z``."""
        self.export_mlp(ex)
        for k in range(self.K + 1):
            if k:
                ex.step("propagate", "z", "z")
            ex.linear("z", "s", self.retain.weight, self.retain.bias)
            ex.step("act", "s", "s", fn="sigmoid")
            ex.step("mul", "s", "kept" if k else "out", other="z")
            if k:
                ex.step("axpby", "out", "out", a=1.0, b=1.0, other="kept")

    def propagate_all(self, z: Tensor, *graph) -> Tensor:
        steps = [z]
        for _ in range(self.K):
            steps.append(self.step(steps[-1], *graph))
        stack = torch.stack(steps, dim=1)  # [N, K + 1, C]
        score = torch.sigmoid(self.retain(stack))  # [N, K + 1, 1]
        return (score * stack).sum(dim=1)
