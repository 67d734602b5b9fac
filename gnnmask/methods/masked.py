"""Mask-only methods: train score masks over frozen random weights.

``ugt``
    Untrained GNN tickets (Huang et al., LoG 2022, arXiv:2211.15335): one
    global score threshold (``mask_rule="global"``), sparsity ramped linearly
    from 0 to the target over the first half of training, kaiming-uniform
    weights.
``edge-popup``
    Ramanujan et al. (CVPR 2020, arXiv:1911.13299): per-layer top-k of
    ``|score|`` at a constant sparsity of 0.5 (they find keeping ~50% best),
    with ``signed-constant`` weights ("signed Kaiming constant", their best
    weight distribution). With the default ``scale="auto"`` (= ``keep``) the
    kept weights are multiplied by ``1/sqrt(0.5)``, which makes them the
    paper's *scaled* signed Kaiming constant.

Only the scores are optimised: every weight stays bit-identical. The method
refreshes the masks after every optimiser step and whenever the schedule
changes the sparsity (:meth:`gnnmask.masks.MaskGroup.refresh`).
"""

from __future__ import annotations

import contextlib
from typing import Any

from torch import nn

from gnnmask.errors import check_choice
from gnnmask.masks import (
    SCALES,
    WEIGHT_INITS,
    get_mask_group,
    make_schedule,
    mask_model,
    score_parameters,
)
from gnnmask.methods.base import Method, Option, register_method

#: Default L0 coefficient for ``mask_rule="hard-concrete"``: a tenth of a
#: cross-entropy of ~1 for a fully dense network (measurements in
#: docs/RESULTS.md).
L0_LAMBDA = 0.1


class MaskedMethod(Method):
    """Shared logic of the mask-only methods."""

    name = "masked"
    masks = True
    trains_weights = False
    reads = ("sparsity", "mask_rule", "weight_init", "score_init", "schedule", "schedule_end")
    options = {
        "mask_scale": Option("keep: scale kept weights by 1/sqrt(1 - sparsity); none: the "
                             "binary mask only; layer / unit: by sqrt(n / kept) of each "
                             "tensor / output unit; auto: keep, except for learnt-sparsity "
                             "rules and scaled weights", "choice", "auto", SCALES),
        "weight_gain": Option("constant the frozen weights are multiplied by after they are "
                              "drawn (the untrained-tickets code's init_scale); it scales "
                              "the logits like a temperature", "positive", 1.0),
        "mask_scale_exclude": Option("glob patterns of masked parameters that keep the "
                                     "binary mask (scale 1) whatever mask_scale says, e.g. "
                                     "GAT's attention vectors", "globs"),
        "mask_include": Option("glob patterns of the parameters to mask", "globs"),
        "mask_exclude": Option("glob patterns of parameters not to mask", "globs"),
        "mask_bias": Option("also mask biases", "bool", False),
        "selection": Option("epochs the final model is chosen from by validation accuracy: "
                            "target (those at the target sparsity) or all (every epoch, as "
                            "the untrained-tickets code does)", "choice", "target",
                            ("target", "all")),
        "eval_sparsity": Option("sparsity of the masks every evaluation uses: scheduled (the "
                                "training masks) or target (the target sparsity from the "
                                "first epoch, as the untrained-tickets code does)", "choice",
                                "scheduled", ("scheduled", "target")),
        "l0_lambda": Option("coefficient of the rule's penalty (hard-concrete: the expected "
                            "fraction of non-zero gates)", "nonnegative", L0_LAMBDA),
    }

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        if config.weight_init is not None:
            check_choice("frozen-weight --weight-init", config.weight_init, WEIGHT_INITS)

    def __init__(self, config, context=None):
        super().__init__(config, context)
        self.schedule = make_schedule(
            self._get("schedule"), self._get("sparsity"), self._get("schedule_end")
        )

    def _get(self, field: str):
        """A config field, or this method's default where it is unset."""
        value = getattr(self.config, field)
        return self.defaults[field] if value is None else value

    def prepare(self, model: nn.Module, data) -> nn.Module:
        return mask_model(
            model,
            sparsity=self._get("sparsity"),
            rule=self._get("mask_rule"),
            include=self.extra("mask_include"),
            exclude=self.extra("mask_exclude"),
            weight_init=self._get("weight_init"),
            score_init=self._get("score_init"),
            mask_bias=bool(self.extra("mask_bias")),
            scale=self.extra("mask_scale"),
            seed=self.config.seed,
            weight_gain=float(self.extra("weight_gain")),
            scale_exclude=self.extra("mask_scale_exclude"),
        )

    def parameters(self, model: nn.Module):
        return score_parameters(model)

    def on_epoch_start(self, epoch: int, model: nn.Module) -> None:
        group = get_mask_group(model)
        sparsity = self.schedule(epoch, self.config.epochs)
        if sparsity != group.sparsity:
            group.refresh(sparsity)

    def penalty(self, model: nn.Module):
        penalty = get_mask_group(model).penalty()
        if penalty is None:
            return None
        return float(self.extra("l0_lambda")) * penalty

    def after_step(self, epoch: int, model: nn.Module, optimizer) -> None:
        get_mask_group(model).refresh()

    def selectable(self, epoch: int) -> bool:
        """Only models at the target sparsity may be chosen as the final one
        (``selection=target``), or any (``selection=all``)."""
        return self.extra("selection") == "all" or self.schedule.done(epoch, self.config.epochs)

    @contextlib.contextmanager
    def evaluating(self, model: nn.Module):
        """With ``eval_sparsity=target``, evaluate the masks the scores give at
        the target sparsity, then return to the scheduled training masks."""
        group = get_mask_group(model)
        current, target = group.sparsity, self.schedule.target
        if self.extra("eval_sparsity") != "target" or current == target \
                or group.rule.learns_sparsity:
            yield
            return
        group.refresh(target)
        try:
            yield
        finally:
            group.refresh(current)

    def end_phase(self, phase, model: nn.Module) -> None:
        """With ``eval_sparsity=target``, the final model holds the target-sparsity
        masks of its best epoch (chosen, during a ramp, by their accuracy)."""
        group = get_mask_group(model)
        if self.extra("eval_sparsity") == "target" and not group.rule.learns_sparsity:
            group.refresh(self.schedule.target)

    def epoch_info(self, model: nn.Module) -> dict[str, Any]:
        group = get_mask_group(model)
        return {
            "sparsity": group.sparsity,
            "achieved_sparsity": group.achieved_sparsity()["overall"],
        }

    def export(self, model: nn.Module) -> dict[str, Any]:
        group = get_mask_group(model)
        achieved = group.achieved_sparsity()
        return {
            "achieved_sparsity": achieved["overall"],
            "per_layer_sparsity": achieved["per_tensor"],
            "target_sparsity": self.schedule.target,
            "mask_rule": group.rule.name,
            "scale": group.scale,
            "schedule": repr(self.schedule),
            "weight_init": group.recipe["weight_init"],
            "score_init": group.recipe["score_init"],
            "weight_gain": group.recipe.get("weight_gain", 1.0),
            "unscaled": sorted(group.unscaled),
            "masked_weights": sum(m.numel() for m in group.masks().values()),
        }


@register_method
class UGT(MaskedMethod):
    """Untrained GNN tickets (Huang et al. 2022): global threshold, linear ramp."""

    name = "ugt"
    defaults = {
        "sparsity": 0.9,
        "mask_rule": "global",
        "weight_init": "kaiming-uniform",
        "score_init": "kaiming-uniform",
        "schedule": "linear",
        "schedule_end": 0.5,
        "dropout": 0.0,
        "bias": False,
        "weight_decay": 0.0,
    }


@register_method
class EdgePopup(MaskedMethod):
    """edge-popup (Ramanujan et al. 2020): per-layer top-k, constant 50% sparsity."""

    name = "edge-popup"
    defaults = {
        "sparsity": 0.5,
        "mask_rule": "topk",
        "weight_init": "signed-constant",
        "score_init": "kaiming-uniform",
        "schedule": "constant",
        "schedule_end": 0.5,
        "dropout": 0.0,
        "bias": False,
        "weight_decay": 0.0,
    }
