"""Mask-only methods: train score masks over frozen random weights.

``ugt``
    Untrained GNN tickets (Huang et al. 2022, arXiv:2211.15335): one global
    score threshold (``mask_rule="global"``), sparsity ramped linearly from 0
    to the target over the first half of training, kaiming-uniform weights.
``edge-popup``
    Ramanujan et al. 2020 (arXiv:1911.13299): per-layer top-k of ``|score|``
    at a constant sparsity of 0.5 (they find keeping ~50% best), with
    ``signed-constant`` weights ("signed Kaiming constant", their best
    weight distribution). With the default ``scale="auto"`` (= ``keep``) the
    kept weights are multiplied by ``1/sqrt(0.5)``, which makes them the
    paper's *scaled* signed Kaiming constant.

Only the scores are optimised: every weight stays bit-identical. Settings
without a :class:`~gnnmask.train.config.RunConfig` field come from
``config.extra``:

``mask_scale``    ``auto`` | ``keep`` | ``none`` (see :func:`gnnmask.masks.resolve_scale`)
``mask_include``, ``mask_exclude``  glob lists over parameter names
``mask_bias``     also mask biases (default False)
``l0_lambda``     coefficient of the hard-concrete L0 penalty (default
                  :data:`L0_LAMBDA`); the penalty is the expected *fraction*
                  of non-zero gates, so ``l0_lambda`` is the loss paid for a
                  fully dense network.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from gnnmask.masks import get_mask_group, make_schedule, mask_model, score_parameters
from gnnmask.methods.base import Method, register_method

#: Default L0 coefficient for ``mask_rule="hard-concrete"``: a tenth of a
#: cross-entropy of ~1 for a fully dense network. Measured on the default
#: CSBM graph (4 layers, width 32, 100 epochs): 0.1 learns ~68% sparsity,
#: 1.0 ~94% at a clear loss of accuracy.
L0_LAMBDA = 0.1


class MaskedMethod(Method):
    """Shared logic of the mask-only methods."""

    name = "masked"

    def __init__(self, config):
        super().__init__(config)
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
        get_mask_group(model).sparsity = self.schedule(epoch, self.config.epochs)

    def penalty(self, model: nn.Module):
        group = get_mask_group(model)
        if group.rule != "hard-concrete":
            return None
        return float(self.config.extra.get("l0_lambda", L0_LAMBDA)) * group.l0_penalty()

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
            "mask_rule": group.rule,
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
