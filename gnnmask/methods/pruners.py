"""Saliency scores for pruning at initialisation, for any PyTorch (Geometric) model.

Each function returns ``{parameter name: score}`` for the tensors
:func:`gnnmask.masks.sparsify` would mask (``targets``, by default every
weight of dimension >= 2); ``sparsify(model, sparsity, distribution,
scores=...)`` then keeps the entries of largest score, exactly. ``forward``
is a callable ``forward(model) -> logits`` (e.g. ``lambda m: m(data.x,
data.edge_index)``), ``loss`` one ``loss(logits) -> scalar`` on the training
nodes. Models are scored in eval mode (no dropout) and left as they were:
parameters, gradients and modes unchanged.

``magnitude``  ``|w|`` (pruning at initialisation by magnitude).
``snip``       connection sensitivity (Lee et al., ICLR 2019): ``|g ⊙ w|``
               with ``g = dL/dw`` on the training graph; the paper's
               normalisation by the sum does not change the ranking (it is
               also the first-order Taylor importance of removing ``w``).
``grasp``      gradient signal preservation (Wang et al., ICLR 2020): the
               paper removes the entries of largest ``-w ⊙ Hg`` (``H`` the
               Hessian, ``g`` the gradient of the loss at temperature ``T``
               = 200), so the score kept here is ``w ⊙ Hg``; ``Hg`` by double
               back-propagation, the gradient ``g`` held constant.
``synflow``    iterative synaptic flow (Tanaka et al., NeurIPS 2020),
               data-free: on a float64 copy with every parameter made
               non-negative (``|θ|``), ``R = sum(f(1))`` for an all-ones
               input on the graph's own normalised adjacency (a GNN has no
               input without a graph; the adjacency is non-negative, so the
               flow stays positive), score ``|θ ⊙ dR/dθ|``, pruned over
               ``iterations`` rounds to densities ``(1 - s)^(t / iterations)``
               with one global threshold; the result is the final mask (1
               kept, 0 pruned) as scores.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from gnnmask.masks import select_masks, select_targets


def prunable(model: nn.Module, include: Sequence[str] | None = None,
             exclude: Sequence[str] | None = None) -> dict[str, nn.Parameter]:
    """``{name: parameter}`` of the tensors :func:`gnnmask.masks.sparsify` masks."""
    return {name: p for name, _, _, p in select_targets(model, include, exclude)}


@contextlib.contextmanager
def _scoring(model: nn.Module):
    """Eval mode and gradients enabled for every parameter; restored afterwards."""
    training = model.training
    flags = {p: p.requires_grad for p in model.parameters()}
    try:
        model.eval()
        for p in flags:
            p.requires_grad_(True)
        yield
    finally:
        model.train(training)
        for p, flag in flags.items():
            p.requires_grad_(flag)


def magnitude_scores(model: nn.Module, **targets) -> dict[str, Tensor]:
    return {n: p.detach().abs() for n, p in prunable(model, **targets).items()}


def snip_scores(model: nn.Module, forward: Callable, loss: Callable,
                **targets) -> dict[str, Tensor]:
    weights = prunable(model, **targets)
    with _scoring(model):
        grads = torch.autograd.grad(loss(forward(model)), list(weights.values()))
    return {n: (g * w).detach().abs() for (n, w), g in zip(weights.items(), grads)}


def grasp_scores(model: nn.Module, forward: Callable, loss: Callable, temperature: float = 200.0,
                 **targets) -> dict[str, Tensor]:
    weights = prunable(model, **targets)
    params = list(weights.values())
    with _scoring(model):
        g = [t.detach() for t in torch.autograd.grad(loss(forward(model) / temperature), params)]
        g_graph = torch.autograd.grad(loss(forward(model) / temperature), params,
                                      create_graph=True)
        z = sum((a * b).sum() for a, b in zip(g, g_graph))
        hg = torch.autograd.grad(z, params)
    return {n: (w * h).detach() for (n, w), h in zip(weights.items(), hg)}


def synaptic_flow(model: nn.Module, forward_ones: Callable, **targets) -> dict[str, Tensor]:
    """One SynFlow pass: ``|θ ⊙ dR/dθ|`` with ``R = sum(f(1))`` on a float64
    copy of ``model`` whose parameters are all made non-negative. Without
    biases the scores of each layer sum to ``R`` (synaptic flow is
    conserved, Tanaka et al. Theorem 1)."""
    net = copy.deepcopy(model).double()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    weights = prunable(net, **targets)
    with _scoring(net):
        grads = torch.autograd.grad(forward_ones(net).sum(), list(weights.values()))
    return {n: (g * w).detach().abs() for (n, w), g in zip(weights.items(), grads)}


def synflow_scores(model: nn.Module, forward_ones: Callable, sparsity: float,
                   iterations: int = 100, **targets) -> dict[str, Tensor]:
    """``forward_ones(net)``: the logits of ``net`` (a float64 copy of
    ``model``) for an all-ones input, e.g. ``lambda m: m(torch.ones_like(x,
    dtype=torch.float64), edge_index)``. Iterates :func:`synaptic_flow` with
    the pruned weights set to zero."""
    net = copy.deepcopy(model)
    weights = prunable(net, **targets)
    start = {n: w.detach().clone() for n, w in weights.items()}
    keep = {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
    for t in range(1, iterations + 1):
        with torch.no_grad():
            for n, w in weights.items():
                w.copy_(start[n] * keep[n])
        flow = synaptic_flow(net, forward_ones, **targets)
        scores = {n: torch.where(keep[n], flow[n], -torch.inf) for n in weights}
        keep = select_masks(scores, 1.0 - (1.0 - sparsity) ** (t / iterations), "global")
    return {n: k.to(start[n].dtype) for n, k in keep.items()}
