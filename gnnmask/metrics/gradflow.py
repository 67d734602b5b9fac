"""Gradient flow: how much gradient reaches each trained tensor.

Evci et al. (AAAI 2022, "Gradient Flow in Sparse Neural Networks and How
Lottery Tickets Win") measure gradient flow as the L2 norm of the gradient of
the unregularised loss on a fixed batch, taken after masking: pruned entries
contribute nothing. :func:`gradient_flow` computes it for any model: the
norm of ``d loss(forward(model)) / d p`` for every tensor ``p`` that requires
a gradient (masked weights, mask scores, biases, ...), per tensor and
overall, with the model in eval mode (no dropout) and left as it was (no
``.grad`` written).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["gradient_flow", "layer_name"]


def layer_name(name: str) -> str:
    """A parameter's name as a reader knows it: ``convs.0.lin.weight`` for the
    stored weight of a masked tensor, ``convs.0.lin.weight.scores`` for its
    mask scores."""
    return (name.replace(".parametrizations.weight.original", ".weight")
            .replace(".parametrizations.weight.0.scores", ".weight.scores"))


def gradient_flow(model: nn.Module, forward: Callable, loss: Callable) -> dict:
    """``{"total": ||g||_2, "per_layer": {name: ||g_p||_2}}`` of the gradient
    of ``loss(forward(model))`` w.r.t. every tensor that requires a gradient."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    training = model.training
    model.eval()
    try:
        grads = torch.autograd.grad(loss(forward(model)), [p for _, p in params],
                                    allow_unused=True)
    finally:
        model.train(training)
    per = {layer_name(n): 0.0 if g is None else float(g.norm())
           for (n, _), g in zip(params, grads)}
    return {"total": math.sqrt(sum(v * v for v in per.values())), "per_layer": per}
