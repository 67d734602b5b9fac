"""Static sparse training: a fixed mask chosen once, then the weights trained.

Every method here attaches fixed masks over trainable weights
(:func:`gnnmask.masks.sparsify`) at exactly ``sparsity`` (the fraction of the
masked weights removed), split over the layers by ``density_dist``, and then
trains like dense training (pruned entries stay exactly zero). They differ
only in the saliency that picks the mask (:mod:`gnnmask.methods.pruners`),
computed on the training graph before the first step:

``random``     random scores: static random sparse training (Liu et al., ICLR
               2022, "The unreasonable effectiveness of random pruning": wide
               randomly pruned networks can match dense ones; ERK densities).
``magnitude``  ``|w|`` at initialisation.
``snip``       ``|g ⊙ w|`` (Lee et al., ICLR 2019).
``grasp``      ``w ⊙ Hg`` kept largest (Wang et al., ICLR 2020).
``synflow``    iterative synaptic flow, data-free (Tanaka et al., NeurIPS 2020).

``--weight-init`` then re-initialises the kept weights (:func:`reinit`):
``default`` (the model's own), ``gradient-flow`` (Evci et al., AAAI 2022) or
``eoi`` (exact orthogonal, Nowak et al., ICML 2024).

Density distributions: ``uniform``, ``erk`` (Erdős–Rényi-Kernel, Evci et
al., ICML 2020) and ``global`` (one threshold over all scores); defaults:
``erk`` for ``random``, ``global`` for the saliency methods, as in their
papers.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import gnnmask.methods.pruners as pruners
from gnnmask.errors import UserError
from gnnmask.masks import get_mask_group, sparsify, update_masks
from gnnmask.masks.init import SPARSE_INITS, generator, sparse_init
from gnnmask.masks.select import keep_mask, round_half_up
from gnnmask.methods.base import Method, Option, features, register_method


@torch.no_grad()
def reinit(model: nn.Module, init: str, seed: int) -> None:
    """Re-initialise the masked trainable weights by ``init`` (one of
    :data:`~gnnmask.masks.init.SPARSE_INITS`: ``gradient-flow`` scales each
    unit by its actual fan-in, ``eoi`` also moves each layer's mask to the
    support of an exactly orthogonal matrix with as many entries)."""
    if init == "default":
        return
    group = get_mask_group(model)
    gen = generator(seed, stream=2)
    for name, (module, attr) in group.targets.items():
        weight = module.parametrizations[attr].original
        new_weight, new_mask = sparse_init(group.members[name].mask, init, gen)
        update_masks(model, {name: new_mask})
        weight.copy_(new_weight.to(device=weight.device, dtype=weight.dtype))


class SparseMethod(Method):
    """Shared logic: a fixed mask at ``sparsity`` from :meth:`saliency`, then
    ordinary training of every parameter."""

    name = "sparse"
    masks = True
    reads = ("sparsity", "density_dist", "weight_init")
    defaults = {"sparsity": 0.9, "density_dist": "global", "weight_init": "default",
                "dropout": 0.5, "bias": True, "weight_decay": 5e-4}

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        if config.weight_init is not None and config.weight_init not in SPARSE_INITS:
            raise UserError(f"--weight-init {config.weight_init!r} is not a sparse "
                            f"initialisation; allowed for {cls.name!r}: {', '.join(SPARSE_INITS)}")

    def saliency(self, model: nn.Module, data) -> dict[str, torch.Tensor] | None:
        """``{name: score}`` of the masked weights (``None``: random)."""
        return None

    def objective(self, data) -> tuple:
        """``(forward, loss)`` the data-driven pruners score: ``forward(model)``
        gives the task's training logits on the graph this method feeds the
        model, ``loss(logits)`` their training loss (the engine's
        :attr:`Context.objective`; without one, node classification's
        cross-entropy on the training nodes)."""
        objective = self.context.objective
        if objective is None:
            mask, y = data.train_mask, data.y
            return (lambda m: m(*self.inputs(data))[mask],
                    lambda out: F.cross_entropy(out, y[mask]))
        return (lambda m: objective.logits(m, self.inputs(data)), objective.loss)

    def prepare(self, model: nn.Module, data) -> nn.Module:
        started = time.perf_counter()
        scores = self.saliency(model, data)
        self.prune_time_s = time.perf_counter() - started
        model = sparsify(model, sparsity=self.config.sparsity,
                         distribution=self.config.density_dist, scores=scores,
                         seed=self.config.seed)
        reinit(model, self.config.weight_init or "default", self.config.seed)
        return model

    def epoch_info(self, model: nn.Module) -> dict[str, Any]:
        return {"achieved_sparsity": get_mask_group(model).achieved_sparsity()["overall"]}

    def export(self, model: nn.Module) -> dict[str, Any]:
        group = get_mask_group(model)
        achieved = group.achieved_sparsity()
        return {
            "achieved_sparsity": achieved["overall"],
            "per_layer_sparsity": achieved["per_tensor"],
            "target_sparsity": self.config.sparsity,
            **({"density_dist": self.config.density_dist} if "density_dist" in self.reads
               else {}),
            "masked_weights": sum(m.numel() for m in group.masks().values()),
            "weight_init": self.config.weight_init,
            "prune_time_s": getattr(self, "prune_time_s", 0.0),
        }


@register_method
class Random(SparseMethod):
    """Static random sparse training (random mask at init, ERK densities by default).

    With ``--edge-sparsity e`` the graph is pruned at random too: ``round(e E)``
    of the ``E`` (directed) edges, drawn from the seed, are left out of every
    propagation, as the random-pruning baseline of graph lottery tickets
    prunes the graph beside the weights (Chen et al., ICML 2021; counted over
    directed edges, as ``ugs`` counts them). Full-batch, one process."""

    name = "random"
    reads = (*SparseMethod.reads, "edge_sparsity")
    defaults = {**SparseMethod.defaults, "density_dist": "erk"}

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        if config.edge_sparsity is not None and (config.batch_size or config.distributed):
            raise UserError("--edge-sparsity prunes the whole graph's edges; allowed: "
                            "full-batch training in one process (--batch-size 0, no "
                            "--distributed)")

    def prepare(self, model: nn.Module, data) -> nn.Module:
        model = super().prepare(model, data)
        self.edge_index = None
        if self.config.edge_sparsity is not None:
            e = self.num_edges = data.edge_index.size(1)
            gen = torch.Generator().manual_seed(self.config.seed)
            scores = torch.rand(e, generator=gen).to(data.edge_index.device)
            keep = keep_mask(scores, round_half_up(self.config.edge_sparsity * e))
            self.edge_index = data.edge_index[:, keep]
        return model

    def inputs(self, data) -> tuple:
        if self.edge_index is None:
            return super().inputs(data)
        return features(data), self.edge_index

    def epoch_info(self, model: nn.Module) -> dict[str, Any]:
        info = super().epoch_info(model)
        if self.edge_index is not None:
            info["edge_sparsity"] = 1.0 - self.edge_index.size(1) / self.num_edges
        return info

    def export(self, model: nn.Module) -> dict[str, Any]:
        out = super().export(model)
        if self.edge_index is not None:
            out["edge_sparsity"] = self.epoch_info(model)["edge_sparsity"]
        return out


@register_method
class Magnitude(SparseMethod):
    """Pruning at initialisation by weight magnitude |w|."""

    name = "magnitude"

    def saliency(self, model, data):
        return pruners.magnitude_scores(model)


@register_method
class SNIP(SparseMethod):
    """SNIP (Lee et al. 2019): connection sensitivity |g ⊙ w| at initialisation."""

    name = "snip"

    def saliency(self, model, data):
        return pruners.snip_scores(model, *self.objective(data))


@register_method
class GraSP(SparseMethod):
    """GraSP (Wang et al. 2020): keep the largest w ⊙ Hg (gradient flow preserved)."""

    name = "grasp"
    options = {"grasp_temperature": Option("temperature of the logits in both passes",
                                           "positive", 200.0)}

    def saliency(self, model, data):
        return pruners.grasp_scores(model, *self.objective(data),
                                    float(self.extra("grasp_temperature")))


@register_method
class SynFlow(SparseMethod):
    """SynFlow (Tanaka et al. 2020): data-free iterative synaptic-flow pruning."""

    name = "synflow"
    options = {"synflow_iterations": Option("pruning iterations, exponential schedule",
                                            "positive_int", 100)}

    def saliency(self, model, data):
        graph = self.inputs(data)[1:]
        ones = torch.ones_like(data.x, dtype=torch.float64)
        return pruners.synflow_scores(model, lambda m: m(ones, *graph), self.config.sparsity,
                                      int(self.extra("synflow_iterations")))
