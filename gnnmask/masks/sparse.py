"""Fixed masks over trainable weights: the ground of sparse training.

:func:`sparsify` attaches to the chosen weights of any model the ``fixed``
rule's parametrization ``W = w ⊙ m`` (:mod:`gnnmask.masks.core`), with the
weights left trainable. Invariants, kept by every function here:

* pruned entries are exactly zero in every forward pass (the product with
  ``m``), receive exactly zero gradient (``dL/dw = dL/dW ⊙ m``), and are
  stored as zeros, so weight decay and momentum never move them and the
  optimiser state of a pruned entry stays zero;
* the sparsity is exact: the masks keep ``N - round(s N)`` of the ``N``
  masked entries, split over the tensors by a *layer-wise density
  distribution* (:func:`layer_densities`);
* masks change only through :func:`update_masks` (or
  :func:`prune_and_regrow`), which zeroes the entries that leave the mask,
  starts the entries that enter it at a given value (0 by default) and zeroes
  their optimiser moments.

The dense gradient ``dL/dW`` of the effective weight, which RigL ranks for
regrowth, is recorded while ``get_mask_group(model).track_dense_grad`` is on
(:meth:`~gnnmask.masks.core.MaskGroup.dense_grads`).

Layer-wise densities: :mod:`gnnmask.masks.densities` (``uniform``, ``erk``,
``global``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gnnmask.errors import UserError, check_arg, check_choice
from gnnmask.masks.api import attach, get_mask_group, select_targets
from gnnmask.masks.core import check_sparsity
from gnnmask.masks.densities import DISTRIBUTIONS, keep_counts, layer_densities
from gnnmask.masks.init import init_scores
from gnnmask.masks.select import keep_mask, keep_masks_pooled, round_half_up


def select_masks(scores: dict[str, Tensor], sparsity: float,
                 distribution: str = "uniform") -> dict[str, Tensor]:
    """Boolean keep-masks that remove exactly ``round(sparsity * N)`` of the
    ``N`` entries of ``scores``, the smallest scores first, split over the
    tensors by ``distribution`` (ties: lower positions removed first)."""
    check_choice("density distribution", distribution, DISTRIBUTIONS)
    sparsity = check_sparsity(sparsity)
    names, tensors = list(scores), [s.detach() for s in scores.values()]
    sizes = [t.numel() for t in tensors]
    removed = round_half_up(sparsity * sum(sizes))
    if distribution == "global":
        return dict(zip(names, keep_masks_pooled(tensors, removed)))
    densities = layer_densities([t.shape for t in tensors], sparsity, distribution)
    counts = keep_counts(sizes, densities, sum(sizes) - removed)
    return {name: keep_mask(t.reshape(-1), n - kept).view(t.shape)
            for name, t, n, kept in zip(names, tensors, sizes, counts)}


def sparsify(
    model: nn.Module,
    sparsity: float = 0.9,
    distribution: str = "uniform",
    scores: dict[str, Tensor] | None = None,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    mask_bias: bool = False,
    seed: int = 0,
) -> nn.Module:
    """Attach fixed masks to the weights of ``model`` (in place; returned),
    keeping the weights trainable, with exactly the given ``sparsity``.

    Args:
        sparsity: fraction of the masked entries removed, ``0 <= s < 1``.
        distribution: ``uniform``, ``erk`` or ``global`` (module docstring).
        scores: ``{parameter name: saliency}`` of every selected tensor
            (e.g. ``|w|``, or SNIP's ``|g ⊙ w|``); the largest are kept.
            Default: random scores drawn from ``seed`` (random pruning).
        include, exclude, mask_bias: which parameters (see
            :func:`~gnnmask.masks.select_targets`).

    The weights keep their values where kept and are set to zero where
    pruned. Train every parameter with ``requires_grad`` as usual.
    """
    check_arg("sparsify", "model", model, nn.Module, "a torch.nn.Module")
    sparsity = check_sparsity(sparsity)
    check_choice("density distribution", distribution, DISTRIBUTIONS)
    targets = select_targets(model, include, exclude, mask_bias)
    weights = {name: p for name, _, _, p in targets}
    if scores is None:
        scores = dict(zip(weights, init_scores(list(weights.values()), "uniform", seed)))
    missing = [n for n in weights if n not in scores]
    if missing:
        raise UserError(f"scores missing for {missing[:4]}; allowed: a dict naming every "
                        "masked parameter")
    for name, w in weights.items():
        if tuple(scores[name].shape) != tuple(w.shape):
            raise UserError(f"scores for {name!r} have shape {tuple(scores[name].shape)}; "
                            f"allowed: {tuple(w.shape)}")
    masks = select_masks({n: scores[n] for n in weights}, sparsity, distribution)
    recipe = dict(kind="sparsify", sparsity=sparsity, distribution=distribution,
                  include=include and list(include), exclude=exclude and list(exclude),
                  mask_bias=bool(mask_bias), seed=int(seed))
    group = attach(model, targets, rule="fixed", sparsity=sparsity, scale="none",
                   recipe=recipe, scores=None)
    update_masks(model, masks)
    group.refresh()
    return model


def _original(group, name: str) -> Tensor:
    module, attr = group.targets[name]
    return module.parametrizations[attr].original


@torch.no_grad()
def update_masks(model: nn.Module, masks: dict[str, Tensor], optimizer=None,
                 value: float = 0.0) -> dict[str, tuple[int, int]]:
    """Set new masks on trainable weights: entries that leave a mask are set
    to zero, entries that enter it are set to ``value``, and the optimiser
    state (e.g. Adam's moments) of every changed entry is zeroed. Returns
    ``{name: (dropped, grown)}`` counts."""
    group = get_mask_group(model)
    changes = {}
    for name, new in masks.items():
        member = group.members.get(name)
        if member is None:
            raise UserError(f"no masked tensor named {name!r}; allowed: "
                            f"{', '.join(list(group.members)[:8])}")
        new = torch.as_tensor(new, device=member.mask.device).to(torch.bool)
        if new.shape != member.mask.shape:
            raise UserError(f"mask for {name!r} has shape {tuple(new.shape)}; "
                            f"allowed: {tuple(member.mask.shape)}")
        weight = _original(group, name)
        dropped, grown = member.mask & ~new, new & ~member.mask
        weight.masked_fill_(~new, 0.0)
        weight.masked_fill_(grown, value)
        if optimizer is not None:
            zero_optimizer_state(optimizer, weight, dropped | grown)
        member.mask.copy_(new)
        changes[name] = (int(dropped.sum()), int(grown.sum()))
    return changes


@torch.no_grad()
def prune_and_regrow(model: nn.Module, name: str, drop: Tensor, grow: Tensor, optimizer=None,
                     value: float = 0.0) -> None:
    """Remove the active entries at flat positions ``drop`` from ``name``'s
    mask and add the entries at ``grow`` (inactive once ``drop`` is removed),
    through :func:`update_masks`. Equal lengths keep the count exact."""
    member = get_mask_group(model).members.get(name)
    if member is None:
        raise UserError(f"no masked tensor named {name!r}")
    mask = member.mask.reshape(-1).clone()
    drop, grow = drop.reshape(-1).to(mask.device), grow.reshape(-1).to(mask.device)
    if drop.unique().numel() != drop.numel() or not bool(mask[drop].all()):
        raise UserError(f"drop positions of {name!r} must be distinct active entries")
    mask[drop] = False
    if grow.unique().numel() != grow.numel() or bool(mask[grow].any()):
        raise UserError(f"grow positions of {name!r} must be distinct inactive entries")
    mask[grow] = True
    update_masks(model, {name: mask.view(member.mask.shape)}, optimizer, value)


@torch.no_grad()
def zero_optimizer_state(optimizer, param: Tensor, where: Tensor) -> None:
    """Zero ``optimizer``'s per-entry state of ``param`` (tensors of its shape,
    e.g. Adam's ``exp_avg``/``exp_avg_sq``, SGD's momentum) at ``where``."""
    for value in optimizer.state.get(param, {}).values():
        if isinstance(value, Tensor) and value.shape == param.shape:
            value.masked_fill_(where, 0)
