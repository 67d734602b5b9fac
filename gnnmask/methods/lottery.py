"""Iterative pruning with rewinding: lottery tickets and graph lottery tickets.

Both methods train in rounds (one engine phase each, ``config.epochs``
epochs from a fresh optimiser) and record every round (``record["rounds"]``:
the sparsity reached and the accuracies of its best validation epoch), so
one run to a high sparsity gives the whole accuracy-against-sparsity curve.
Each round prunes ``prune_rate`` of the *remaining* weights (20% by default);
the last round stops exactly at ``sparsity``, and so does every sparsity in
the ``stops`` option (a sweep's sparsity axis), so the rounds hit them
exactly (:func:`pruning_levels`).

``imp``
    Iterative magnitude pruning (Frankle & Carbin, ICLR 2019): round 0
    trains the dense network; each later round prunes the weights of
    smallest ``|w|`` among those kept (one global threshold by default,
    ``--density-dist``), rewinds every parameter to its value at
    initialisation, or after ``--rewind-epoch k`` epochs of round 0 (late
    rewinding, Frankle et al., ICML 2020), and trains again.
``ugs``
    Unified GNN sparsification (Chen et al., ICML 2021): graph lottery
    tickets. Each round has a *search* phase, which trains the weights
    together with a real-valued mask over the weights and one over the
    edges (edge weights of the GCN propagation, applied before its
    normalisation; self-loops stay unmasked), under the L1 penalties
    ``l1_weight * sum |m_w| + l1_graph * sum |m_g|``; from the masks of the
    best validation epoch it prunes ``prune_rate`` of the remaining weights
    (one global threshold over ``|m_w|``) and ``edge_prune_rate`` (5%) of
    the remaining edges (by ``|m_g|``); a *retrain* phase then trains the
    pruned network from the rewound initial weights with both masks fixed,
    and its accuracy is the round's. The masks restart at 1 (times 1 +
    U(-1e-5, 1e-5), to break ties) every search. Edges are pruned down to
    ``--edge-sparsity`` when given, else by 5% per round for as many rounds
    as the weights need. Degrees are the model's: with ``gcn``'s default
    ``degree="in"`` PyG's (``gcn_norm``: in-degree over the masked edge
    weights, plus 1 for the self-loop); the authors' dense implementation
    takes row sums, each node's out-degree (``--degree out``, which the
    ``ugs-paper`` preset sets). The two differ once the learnt mask is
    asymmetric (docs/RESULTS.md: 3.3-3.6 points on CiteSeer).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from gnnmask.errors import UserError
from gnnmask.masks import get_mask_group, select_masks, sparsify, update_masks
from gnnmask.masks.select import keep_mask, round_half_up
from gnnmask.methods.base import Option, Phase, features, register_method
from gnnmask.methods.sparse import SparseMethod
from gnnmask.models.deep import edge_weight_models

#: How close (in sparsity) a round's level may fall short of a mark and still
#: count as reaching it: far below one weight of any model, far above rounding.
_LEVEL_EPS = 1e-9


def pruning_levels(target: float, rate: float, stops=()) -> list[float]:
    """Sparsities after each round: a round removes ``rate`` of what remains,
    but stops at the next of ``stops`` (or ``target``) if it would pass it,
    or reach it up to rounding (``1 - 0.8^4`` computed is ``0.5903999...``:
    a target of 0.5904 is four rounds of 20%, not five)."""
    marks = sorted({float(s) for s in stops if 0.0 < s < target} | {float(target)})
    levels, s = [], 0.0
    while marks and s < target:
        mark = next(m for m in marks if m > s)
        step = 1.0 - (1.0 - s) * (1.0 - rate)
        s = mark if step >= mark - _LEVEL_EPS else step
        levels.append(s)
    return levels



class _Rewinding(SparseMethod):
    """Shared by IMP and UGS: the round schedule and the rewind point."""

    iterative = True
    options = {
        "prune_rate": Option("fraction of the remaining weights pruned per round", "rate",
                             0.2),
        "stops": Option("sparsities the rounds must hit exactly (a sweep's axis)",
                        "sparsities", []),
    }

    def __init__(self, config, context=None):
        super().__init__(config, context)
        self.levels = pruning_levels(config.sparsity, self.extra("prune_rate"),
                                     self.extra("stops"))
        self.phase = Phase()
        self.level = 0.0  # the sparsity the current phase trains at

    def prepare(self, model: nn.Module, data) -> nn.Module:
        model = sparsify(model, sparsity=0.0, distribution="global", seed=self.config.seed)
        # The rewind point is taken when the first phase starts: after the
        # engine's initialisation tricks (``--rescale-init``), whose weights are
        # the initialisation the rounds rewind to.
        self.rewind_to: dict[str, torch.Tensor] | None = None
        return model

    def _mark_start(self, model: nn.Module) -> None:
        if self.rewind_to is None:
            self.rewind_to = self._snapshot(model)

    @staticmethod
    def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in model.named_parameters()}

    @torch.no_grad()
    def _rewind(self, model: nn.Module) -> None:
        """Every parameter back to the rewind point; pruned weights stay zero."""
        params = dict(model.named_parameters())
        for name, value in self.rewind_to.items():
            if name in params:
                params[name].copy_(value)
        group = get_mask_group(model)
        for name, mask in group.masks().items():
            module, attr = group.targets[name]
            module.parametrizations[attr].original.mul_(mask)

    def after_step(self, epoch: int, model: nn.Module, optimizer) -> None:
        k = self.config.rewind_epoch or 0
        if self.phase.round == 0 and self.phase.name != "retrain" and k and epoch + 1 == k:
            self.rewind_to = self._snapshot(model)

    def _prune_weights(self, model: nn.Module, scores: dict, level: float, dist: str) -> None:
        """Keep the largest ``scores`` among the kept weights, at sparsity ``level``."""
        group = get_mask_group(model)
        masks = group.masks()
        scores = {n: torch.where(masks[n], s, -torch.inf) for n, s in scores.items()}
        update_masks(model, select_masks(scores, level, dist))

    def epoch_info(self, model: nn.Module) -> dict[str, Any]:
        return {"round": self.phase.round, "sparsity": self.level, **super().epoch_info(model)}

    def export(self, model: nn.Module) -> dict[str, Any]:
        return {**super().export(model), "levels": self.levels,
                "prune_rate": self.extra("prune_rate"),
                "rewind_epoch": self.config.rewind_epoch}


@register_method
class IMP(_Rewinding):
    """Iterative magnitude pruning with rewinding (Frankle & Carbin 2019)."""

    name = "imp"
    reads = ("sparsity", "density_dist", "rewind_epoch")
    defaults = {**SparseMethod.defaults, "rewind_epoch": 0}

    def phases(self) -> list[Phase]:
        return [Phase(round=r) for r in range(len(self.levels) + 1)]

    def start_phase(self, phase: Phase, model: nn.Module, data) -> None:
        self._mark_start(model)
        self.phase = phase
        if phase.round == 0:
            return
        self.level = self.levels[phase.round - 1]
        group = get_mask_group(model)
        scores = {n: module.parametrizations[attr].original.detach().abs()
                  for n, (module, attr) in group.targets.items()}
        self._prune_weights(model, scores, self.level, self.config.density_dist)
        self._rewind(model)


class SoftMask(nn.Module):
    """A real-valued, trainable mask: ``W -> W ⊙ value`` (UGS's weight mask)."""

    def __init__(self, keep: torch.Tensor, noise: torch.Tensor):
        super().__init__()
        self.value = nn.Parameter(keep.to(noise.dtype) * (1.0 + noise))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.value


@register_method
class UGS(_Rewinding):
    """UGS graph lottery tickets (Chen et al. 2021): joint weight and edge masks."""

    name = "ugs"
    reads = ("sparsity", "edge_sparsity")
    options = {
        **_Rewinding.options,
        "edge_prune_rate": Option("fraction of the remaining edges pruned per round", "rate",
                                  0.05),
        "l1_weight": Option("L1 coefficient of the weight masks", "nonnegative", 0.01),
        "l1_graph": Option("L1 coefficient of the edge mask", "nonnegative", 0.01),
    }

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)

        weighted = edge_weight_models()

        if config.batch_size or config.distributed:
            raise UserError("method 'ugs' learns a mask over the whole graph's edges; allowed: "
                            "full-batch training in one process (--batch-size 0, no "
                            "--distributed)")

        if config.model not in weighted:
            raise UserError(f"method 'ugs' masks the edges of a GCN propagation; --model "
                            f"{config.model!r} takes no edge weights; allowed: "
                            f"{', '.join(weighted)}")

    def __init__(self, config, context=None):
        super().__init__(config, context)
        rate = self.extra("edge_prune_rate")
        if config.edge_sparsity is not None:
            edges = pruning_levels(config.edge_sparsity, rate)
            rounds = max(len(self.levels), len(edges))
        else:
            rounds = len(self.levels)
            edges = [1.0 - (1.0 - rate) ** (r + 1) for r in range(rounds)]
        self.levels += [self.levels[-1]] * (rounds - len(self.levels))
        self.edge_levels = edges + [edges[-1]] * (rounds - len(edges))
        self.l1_weight = float(self.extra("l1_weight"))
        self.l1_graph = float(self.extra("l1_graph"))

    def prepare(self, model: nn.Module, data) -> nn.Module:
        model = super().prepare(model, data)
        self.edge_index = data.edge_index
        self.edge_keep = torch.ones(data.edge_index.size(1), dtype=torch.bool,
                                    device=data.edge_index.device)
        self.edge_mask = None
        self.gen = torch.Generator().manual_seed(self.config.seed)
        return model

    def phases(self) -> list[Phase]:
        return [Phase(r, name, reported=name == "retrain")
                for r in range(len(self.levels)) for name in ("search", "retrain")]

    def _noise(self, shape, device) -> torch.Tensor:
        return (torch.rand(shape, generator=self.gen) * 2e-5 - 1e-5).to(device)

    def start_phase(self, phase: Phase, model: nn.Module, data) -> None:
        self._mark_start(model)
        self.phase = phase
        group = get_mask_group(model)
        if phase.name == "search":
            if phase.round > 0:
                self._rewind(model)
            for name, (module, attr) in group.targets.items():
                keep = group.members[name].mask
                parametrize.register_parametrization(
                    module, attr, SoftMask(keep, self._noise(keep.shape, keep.device)),
                    unsafe=True)
            self.edge_mask = nn.Parameter(self.edge_keep.float() * (
                1.0 + self._noise(self.edge_keep.shape, self.edge_keep.device)))
            return
        # retrain: prune by the learnt masks (best validation epoch), then rewind
        scores = {}
        for name, (module, attr) in group.targets.items():
            plist = module.parametrizations[attr]
            scores[name] = plist[1].value.detach().abs()
            del plist[1]  # the soft mask goes; the fixed binary mask stays
        self.level = self.levels[phase.round]
        self._prune_weights(model, scores, self.level, "global")
        e = self.edge_keep.numel()
        drop = round_half_up(self.edge_levels[phase.round] * e)
        edge_scores = torch.where(self.edge_keep, self.edge_mask.detach().abs(), -torch.inf)
        self.edge_keep = keep_mask(edge_scores, drop)
        self.edge_mask = None
        self._rewind(model)

    def parameters(self, model: nn.Module):
        params = [p for p in model.parameters() if p.requires_grad]
        return params + ([self.edge_mask] if self.edge_mask is not None else [])

    def inputs(self, data) -> tuple:
        ei = self.edge_index[:, self.edge_keep]
        if self.edge_mask is None:
            return features(data), ei
        return features(data), ei, self.edge_mask[self.edge_keep]

    def penalty(self, model: nn.Module):
        if self.edge_mask is None:
            return None
        group = get_mask_group(model)
        soft = sum(module.parametrizations[attr][1].value.abs().sum()
                   for module, attr in group.targets.values())
        return self.l1_weight * soft + self.l1_graph * self.edge_mask[self.edge_keep].abs().sum()

    def state(self) -> dict[str, Any]:
        return {} if self.edge_mask is None else {"edge_mask": self.edge_mask.detach().clone()}

    def load_state(self, state: dict[str, Any]) -> None:
        if "edge_mask" in state:
            with torch.no_grad():
                self.edge_mask.copy_(state["edge_mask"])

    def epoch_info(self, model: nn.Module) -> dict[str, Any]:
        e = self.edge_keep.numel()
        return {**super().epoch_info(model),
                "edge_sparsity": 1.0 - int(self.edge_keep.sum()) / e if e else 0.0}

    def export(self, model: nn.Module) -> dict[str, Any]:
        return {**super().export(model), "edge_levels": self.edge_levels,
                "edge_sparsity": self.epoch_info(model)["edge_sparsity"],
                "kept_edges": int(self.edge_keep.sum()), "l1_weight": self.l1_weight,
                "l1_graph": self.l1_graph}

