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

from typing import Any

from torch import nn

from gnnmask.errors import UserError, check_choice
from gnnmask.masks import (
    SCALES,
    WEIGHT_INITS,
    get_mask_group,
    make_schedule,
    mask_model,
    score_parameters,
)
from gnnmask.methods.base import Method, register_method

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
        "mask_scale": "auto | keep | none: scale kept weights by 1/sqrt(1 - sparsity) "
                      "(auto: keep, except for learnt-sparsity rules and scaled weights)",
        "mask_include": "glob patterns of the parameters to mask (a JSON list)",
        "mask_exclude": "glob patterns of parameters not to mask (a JSON list)",
        "mask_bias": "also mask biases (true/false; default false)",
        "l0_lambda": f"coefficient of the rule's penalty (hard-concrete: the expected "
                     f"fraction of non-zero gates; default {L0_LAMBDA})",
    }

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        if config.weight_init is not None:
            check_choice("frozen-weight --weight-init", config.weight_init, WEIGHT_INITS)
        extra = config.extra
        check_choice("--extra mask_scale", extra.get("mask_scale", "auto"), SCALES)
        if not isinstance(extra.get("mask_bias", False), bool):
            raise UserError(f"--extra mask_bias={extra['mask_bias']!r} is invalid; allowed: "
                            "true, false")
        for key in ("mask_include", "mask_exclude"):
            value = extra.get(key, [])
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise UserError(f"--extra {key}={value!r} is invalid; allowed: a glob or a "
                                "JSON list of globs")
        lam = extra.get("l0_lambda", L0_LAMBDA)
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or lam < 0:
            raise UserError(f"--extra l0_lambda={lam!r} is invalid; allowed: a number >= 0")

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
        extra = self.config.extra
        return mask_model(
            model,
            sparsity=self._get("sparsity"),
            rule=self._get("mask_rule"),
            include=extra.get("mask_include"),
            exclude=extra.get("mask_exclude"),
            weight_init=self._get("weight_init"),
            score_init=self._get("score_init"),
            mask_bias=bool(extra.get("mask_bias", False)),
            scale=extra.get("mask_scale", "auto"),
            seed=self.config.seed,
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
        return float(self.config.extra.get("l0_lambda", L0_LAMBDA)) * penalty

    def after_step(self, epoch: int, model: nn.Module, optimizer) -> None:
        get_mask_group(model).refresh()

    def selectable(self, epoch: int) -> bool:
        """Only models at the target sparsity may be chosen as the final one."""
        return self.schedule.done(epoch, self.config.epochs)

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
