"""Score masks over frozen random weights, for any ``torch.nn.Module``.

>>> model = mask_model(model, sparsity=0.9, rule="global", seed=0)
>>> optimizer = torch.optim.Adam(score_parameters(model), lr=0.01)
>>> get_mask_group(model).sparsity = 0.5     # e.g. from make_schedule(...)
>>> save_ticket("net.ticket", model); same = load_ticket("net.ticket")

Modules: :mod:`~gnnmask.masks.core` (parametrization, rules, gradients),
:mod:`~gnnmask.masks.init` (weight/score inits), :mod:`~gnnmask.masks.schedules`
and :mod:`~gnnmask.masks.tickets`. Nothing here knows about training loops.

Saving. A masked model's ``state_dict`` holds, per masked tensor,
``<module>.parametrizations.<name>.original`` (the frozen weight) and
``<module>.parametrizations.<name>.0.scores``; it loads into a model masked
with the same targets. ``torch.save(model)`` (pickling the module) is not
supported by torch's parametrizations: save the ``state_dict`` or a ticket.
The current sparsity is not part of the ``state_dict``: set it on the group.

Forward passes. ``mask_model`` adds a forward pre-hook and a forward hook to
the model it masks: a forward pass of that model computes every effective
weight once, at its start (:meth:`MaskGroup.begin_pass`); a sub-module called
on its own computes its weight when it reads it. ``unmask_model`` removes
both hooks.

Devices. Nothing is created on a fixed device: scores and masks live where
the weights live, and the mask cache follows ``model.to(...)``.
"""

from gnnmask.masks.api import (
    get_mask_group,
    is_masked,
    mask_model,
    resolve_scale,
    score_parameters,
    select_targets,
    unmask_model,
)
from gnnmask.masks.core import RULES, SCALES, MaskGroup, ScoreMask
from gnnmask.masks.init import SCORE_INITS, WEIGHT_INITS
from gnnmask.masks.schedules import SCHEDULES, Schedule, make_schedule
from gnnmask.masks.tickets import load_ticket, read_ticket, save_ticket

__all__ = [
    "RULES", "SCALES", "SCHEDULES", "SCORE_INITS", "WEIGHT_INITS",
    "MaskGroup", "Schedule", "ScoreMask",
    "get_mask_group", "is_masked", "load_ticket", "make_schedule", "mask_model",
    "read_ticket", "resolve_scale", "save_ticket", "score_parameters", "select_targets",
    "unmask_model",
]
