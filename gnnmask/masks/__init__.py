"""Masks for any ``torch.nn.Module``: how a mask is applied and chosen, nothing about training.

Score masks over frozen random weights (untrained tickets)::

    model = mask_model(model, sparsity=0.9, rule="global", seed=0)
    optimizer = torch.optim.Adam(score_parameters(model), lr=0.01)
    refresh_on_step(optimizer, model)          # masks follow the scores
    get_mask_group(model).refresh(0.5)         # e.g. a schedule's sparsity
    save_ticket("net.ticket", model); same = load_ticket("net.ticket")

Fixed masks over trainable weights (sparse training)::

    model = sparsify(model, sparsity=0.9, distribution="erk", seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)  # pruned entries stay 0
    prune_and_regrow(model, name, drop, grow, optimizer)       # SET / RigL updates

Modules: :mod:`~gnnmask.masks.core` (the straight-through parametrization
and the mask group; read it first), :mod:`~gnnmask.masks.rules` (mask
rules), :mod:`~gnnmask.masks.select` (exact k-smallest selection),
:mod:`~gnnmask.masks.sparse` (trainable-weight masks),
:mod:`~gnnmask.masks.densities` (layer-wise sparsity budgets),
:mod:`~gnnmask.masks.init`, :mod:`~gnnmask.masks.schedules`,
:mod:`~gnnmask.masks.tickets` and :mod:`~gnnmask.masks.api`.

Saving. A masked model's ``state_dict`` holds, per masked tensor,
``<module>.parametrizations.<name>.original`` (the weight) and
``<module>.parametrizations.<name>.0.{scores,mask,scale}``; it loads into a
model masked with the same targets, masks included. ``torch.save(model)``
(pickling the module) is not supported by torch's parametrizations: save the
``state_dict`` or a ticket.

Devices. Nothing is created on a fixed device: scores, masks and scales live
where the weights live and follow ``model.to(...)``.
"""

from gnnmask.masks.api import (
    get_mask_group,
    is_masked,
    mask_model,
    refresh_on_step,
    resolve_scale,
    score_parameters,
    select_targets,
    unmask_model,
)
from gnnmask.masks.core import SCALES, MaskGroup, MaskParametrization
from gnnmask.masks.densities import DISTRIBUTIONS, layer_densities
from gnnmask.masks.init import SCORE_INITS, WEIGHT_INITS
from gnnmask.masks.rules import RULES, MaskRule, register_rule, resolve_rule
from gnnmask.masks.schedules import SCHEDULES, Schedule, make_schedule
from gnnmask.masks.sparse import (
    prune_and_regrow,
    select_masks,
    sparsify,
    update_masks,
)
from gnnmask.masks.tickets import load_ticket, read_ticket, save_ticket, ticket_graph

__all__ = [
    "DISTRIBUTIONS", "RULES", "SCALES", "SCHEDULES", "SCORE_INITS", "WEIGHT_INITS",
    "MaskGroup", "MaskParametrization", "MaskRule", "Schedule",
    "get_mask_group", "is_masked", "layer_densities", "load_ticket", "make_schedule",
    "mask_model", "prune_and_regrow", "read_ticket", "refresh_on_step", "register_rule",
    "resolve_rule", "resolve_scale", "save_ticket", "score_parameters", "select_masks",
    "select_targets", "sparsify", "ticket_graph", "unmask_model", "update_masks",
]
