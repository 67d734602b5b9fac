"""Evaluation beyond accuracy: calibration, robustness, out-of-distribution detection.

Pure functions of predictions (and, for the perturbations, of a graph and a
seed), as in the untrained GNN tickets paper's protocol (Huang et al., LoG
2022):

:func:`expected_calibration_error`  ECE with equal-width confidence bins
    (Guo et al., ICML 2017): ``sum_b |B_b|/n |acc(B_b) - conf(B_b)|``, 15
    bins by default (the untrained-tickets code: 4, from 5 edges of
    ``linspace(0, 1, 5)``); :func:`reliability` gives the per-bin accuracy and
    confidence for a reliability diagram.
:func:`fit_temperature`  temperature scaling (Guo et al. 2017): the ``T > 0``
    minimising the negative log-likelihood of ``softmax(z / T)`` on held-out
    (validation) nodes; the calibration evaluation reports the test ECE
    before and after it, which separates a model's ranking from the mere
    scale of its logits (mask-only models over frozen weights have no
    trainable output scale).
:func:`auroc`  the area under the ROC curve of scores for binary labels
    (the probability that a random positive scores above a random negative,
    ties counted half): the Mann-Whitney statistic.
:func:`hits_at_k`  link prediction's Hits@K (OGB): positives scored above the
    K-th best negative.
:func:`ood_scores`  the negative maximum softmax probability (Hendrycks &
    Gimpel, ICLR 2017): higher means "more out-of-distribution".
:func:`perturb_features`  a fraction ``budget`` of the nodes get random
    features: each of their entries is a fair coin (Bernoulli 0.5), rescaled
    to the node's original row sum (the datasets' features are row-normalised).
:func:`perturb_edges`  ``round(budget * E / 2)`` random undirected edges are
    removed and as many random new node pairs connected (the edge count
    stays; ``E`` counts both directions; self-loops are kept).
:func:`holdout_classes`  which classes an OOD experiment leaves out of
    training: ``ceil(fraction * C)`` classes drawn from a seed
    (``rounding="floor"``: ``floor(fraction * C)``, as the untrained-tickets
    code does; Cora with 0.4: 2 classes instead of 3).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch_geometric.utils import coalesce, to_undirected

from gnnmask.errors import UserError
from gnnmask.registry import Registry

__all__ = ["BUDGETS", "EVALUATIONS", "auroc", "hits_at_k", "evaluate_model",
           "expected_calibration_error",
           "fit_temperature", "holdout_classes", "ood_scores", "perturb_edges",
           "perturb_features", "reliability"]

EVALUATIONS = Registry("evaluation", {
    "calibration": "Expected calibration error and reliability, before and after temperature "
                   "scaling (Guo et al. 2017).",
    "robustness": "Accuracy under seeded feature noise and edge perturbations.",
    "ood": "AUROC of out-of-distribution scores for held-out classes "
           "(--holdout-classes).",
})
#: Perturbation budgets of the robustness evaluation.
BUDGETS = (0.1, 0.2, 0.3, 0.4, 0.5)


def reliability(probs: Tensor, labels: Tensor, bins: int = 15) -> list[dict]:
    """Per confidence bin ``[k/bins, (k+1)/bins)`` (the last closed): its node
    count, mean confidence and accuracy (``None`` when empty)."""
    conf, pred = probs.max(dim=1)
    correct = (pred == labels).float()
    index = (conf * bins).long().clamp_(max=bins - 1)
    out = []
    for b in range(bins):
        sel = index == b
        n = int(sel.sum())
        out.append({"bin": b, "lower": b / bins, "upper": (b + 1) / bins, "count": n,
                    "confidence": float(conf[sel].mean()) if n else None,
                    "accuracy": float(correct[sel].mean()) if n else None})
    return out


def expected_calibration_error(probs: Tensor, labels: Tensor, bins: int = 15) -> float:
    """ECE of class probabilities ``probs`` ``[n, C]`` against ``labels`` ``[n]``."""
    n = labels.numel()
    return sum(b["count"] / n * abs(b["accuracy"] - b["confidence"])
               for b in reliability(probs, labels, bins) if b["count"])


def fit_temperature(logits: Tensor, labels: Tensor, steps: int = 100) -> float:
    """The temperature ``T`` minimising ``cross_entropy(logits / T, labels)``
    (float64 L-BFGS over ``log T``, started at ``T = 1``)."""
    z, y = logits.detach().double().cpu(), labels.cpu()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=steps, tolerance_grad=1e-12,
                            tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return float(log_t.detach().exp())


def auroc(scores: Tensor, labels: Tensor) -> float:
    """AUROC of ``scores`` for boolean ``labels`` (positives should score
    higher): the Mann-Whitney statistic, tied scores sharing their mean rank."""
    scores, labels = scores.double().view(-1), labels.bool().view(-1)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if not n_pos or not n_neg:
        raise ValueError("AUROC needs positive and negative examples")
    _, inverse, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()  # rank of each value's last occurrence
    ranks = (ends - (counts.double() - 1) / 2)[inverse]
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def hits_at_k(pos: Tensor, neg: Tensor, k: int) -> float:
    """Hits@K of link prediction as OGB defines it: the fraction of positive
    edges scored strictly above the K-th highest negative score (1.0 with
    fewer than K negatives)."""
    pos, neg = pos.view(-1), neg.view(-1)
    if neg.numel() < k:
        return 1.0
    kth = torch.topk(neg, k).values[-1]
    return float((pos > kth).double().mean())


def ood_scores(logits: Tensor) -> Tensor:
    """``-max softmax``: the maximum-softmax-probability OOD score, negated."""
    return -torch.softmax(logits, dim=-1).max(dim=-1).values


def holdout_classes(num_classes: int, fraction: float, seed: int,
                    rounding: str = "ceil") -> list[int]:
    """``ceil(fraction * num_classes)`` classes (``rounding="floor"``:
    ``floor``, as the untrained-tickets code does; at least 1, at most C-1),
    drawn from ``seed``."""
    if rounding not in ("ceil", "floor"):
        raise UserError(f"rounding {rounding!r} is invalid; allowed: ceil, floor")
    count = math.ceil if rounding == "ceil" else math.floor
    k = min(num_classes - 1, max(1, count(fraction * num_classes)))
    gen = torch.Generator().manual_seed(int(seed))
    return sorted(torch.randperm(num_classes, generator=gen)[:k].tolist())


def perturb_features(x: Tensor, budget: float, seed: int) -> Tensor:
    """``x`` with a fraction ``budget`` of its rows replaced by random binary
    rows (each entry Bernoulli 0.5) scaled to the original row sums."""
    gen = torch.Generator().manual_seed(int(seed))
    n = x.size(0)
    rows = torch.randperm(n, generator=gen)[: int(round(budget * n))]
    noise = torch.bernoulli(torch.full((rows.numel(), x.size(1)), 0.5), generator=gen)
    total = x[rows].sum(dim=1, keepdim=True).cpu()
    noise = noise * (total / noise.sum(dim=1, keepdim=True).clamp(min=1))
    out = x.clone()
    out[rows] = noise.to(device=x.device, dtype=x.dtype)
    return out


def perturb_edges(edge_index: Tensor, num_nodes: int, budget: float, seed: int) -> Tensor:
    """An undirected ``edge_index`` with ``round(budget * E / 2)`` random edges
    removed and as many random new ones added."""
    gen = torch.Generator().manual_seed(int(seed))
    device = edge_index.device
    ei = edge_index.cpu()
    loops = ei[:, ei[0] == ei[1]]
    und = ei[:, ei[0] < ei[1]]
    k = int(round(budget * und.size(1)))
    keep = torch.randperm(und.size(1), generator=gen)[k:]
    kept = und[:, keep]
    existing = set(map(tuple, und.t().tolist()))
    added = []
    while len(added) < k:
        pair = torch.randint(num_nodes, (2,), generator=gen).tolist()
        a, b = min(pair), max(pair)
        if a != b and (a, b) not in existing:
            existing.add((a, b))
            added.append((a, b))
    new = torch.tensor(added, dtype=ei.dtype).t() if added else ei.new_zeros((2, 0))
    out = torch.cat([to_undirected(torch.cat([kept, new], dim=1), num_nodes=num_nodes), loops],
                    dim=1)
    return coalesce(out, num_nodes=num_nodes).to(device)


@torch.no_grad()
def evaluate_model(forward: Callable, data, names: Sequence[str], seed: int = 0,
                   budgets: Sequence[float] = BUDGETS, bins: int = 15) -> dict:
    """The evaluations ``names`` (of :data:`EVALUATIONS`) of a trained model.

    ``forward(data) -> logits`` runs the model (in eval mode) on a graph
    (``data`` or a perturbed shallow copy with new ``x`` / ``edge_index``).
    Calibration and robustness use ``data.test_mask`` (the temperature of
    :func:`fit_temperature` is fitted on ``data.val_mask``); ``ood`` needs
    ``data.ood_mask`` (test nodes of classes held out of training) and scores
    them against the in-distribution test nodes. ``bins``: confidence bins
    of the calibration error (recorded with it)."""
    out = forward(data)
    result: dict = {}
    test = data.test_mask
    if "calibration" in names:
        probs, y = torch.softmax(out[test], -1), data.y[test]
        t = fit_temperature(out[data.val_mask], data.y[data.val_mask])
        scaled = torch.softmax(out[test].double() / t, -1)
        result["calibration"] = {"ece": expected_calibration_error(probs, y, bins),
                                 "bins": reliability(probs, y, bins), "temperature": t,
                                 "ece_scaled": expected_calibration_error(scaled, y, bins),
                                 "num_bins": bins}
    if "ood" in names:
        nodes = test | data.ood_mask
        result["ood"] = {"auroc": auroc(ood_scores(out[nodes]), data.ood_mask[nodes]),
                         "in_nodes": int(test.sum()), "out_nodes": int(data.ood_mask.sum())}
    if "robustness" in names:
        def accuracy(x, edge_index) -> float:
            perturbed = copy.copy(data)
            perturbed.x, perturbed.edge_index = x, edge_index
            pred = forward(perturbed).argmax(-1)
            return float((pred[test] == data.y[test]).float().mean())

        result["robustness"] = {
            "budgets": list(budgets),
            "features": [accuracy(perturb_features(data.x, b, seed), data.edge_index)
                         for b in budgets],
            "edges": [accuracy(data.x, perturb_edges(data.edge_index, data.num_nodes, b, seed))
                      for b in budgets],
        }
    return result
