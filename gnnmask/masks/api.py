"""Attach masks to any ``torch.nn.Module`` and take them off again.

:func:`mask_model` puts score masks over frozen random weights (untrained
tickets); :func:`~gnnmask.masks.sparsify` puts fixed masks over trainable
weights (sparse training). Both go through :func:`attach`, which registers
one :class:`~gnnmask.masks.core.MaskParametrization` per selected tensor with
``torch.nn.utils.parametrize``; :func:`unmask_model` bakes the masks into
plain weights and removes them.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.parameter import is_lazy
from torch.nn.utils import parametrize

from gnnmask.errors import UserError, check_arg, check_choice
from gnnmask.masks.core import SCALES, MaskGroup, MaskParametrization, check_sparsity
from gnnmask.masks.init import SCORE_INITS, WEIGHT_INITS, init_scores, init_weights_
from gnnmask.masks.rules import resolve_rule

#: Attention vectors of GATConv (``att_src``/``att_dst``/``att_edge``) and
#: GATv2Conv (``att``): shaped ``[1, heads, C]``, masked only when ``include``
#: names them.
ATTENTION = ("att", "att_src", "att_dst", "att_edge", "att_l", "att_r")


def resolve_scale(scale: str, rule, weight_init: str) -> str:
    """``"auto"`` is ``"keep"`` (multiply kept weights by ``1/sqrt(1 - s)``)
    unless the rule learns its sparsity (Bernoulli, hard-concrete) or the
    weights are ``scaled-signed-constant`` (whose values already account for
    the density): then ``"none"``. Without ``keep`` the signal of a
    deep GCN without normalisation fades by ``sqrt(1 - s)`` per layer
    (measurements in docs/RESULTS.md)."""
    check_choice("scale", scale, SCALES)
    if scale != "auto":
        return scale
    if resolve_rule(rule).learns_sparsity or weight_init == "scaled-signed-constant":
        return "none"
    return "keep"


def _patterns(what: str, value) -> list[str] | None:
    if value is None:
        return None
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, (list, tuple)) or not all(isinstance(p, str) for p in value):
        raise UserError(f"{what} {value!r} is invalid; allowed: a list of glob patterns")
    return list(value)


def select_targets(
    model: nn.Module, include=None, exclude=None, mask_bias: bool = False
) -> list[tuple[str, nn.Module, str, nn.Parameter]]:
    """``(name, module, attribute, parameter)`` of every tensor to mask, in
    ``named_parameters`` order.

    Candidates are the parameters of dimension >= 2 (and 1-D ``*bias``
    parameters with ``mask_bias``). Without ``include`` the attention vectors
    (:data:`ATTENTION`) are left out; with it, exactly the candidates matching
    one of its glob patterns (``fnmatch`` on dotted names) are taken. Then
    those matching an ``exclude`` pattern are dropped.
    """
    if is_masked(model):
        raise UserError("model is already masked; allowed: an unmasked model (see unmask_model)")
    include, exclude = _patterns("include", include), _patterns("exclude", exclude or [])
    shared = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        shared.setdefault(id(p), []).append(name)
    targets, candidates = [], []
    for name, p in model.named_parameters():
        if any(fnmatch.fnmatchcase(name, pat) for pat in exclude):
            continue
        if is_lazy(p):
            raise UserError(
                f"parameter {name!r} is not initialised yet (lazy layer, e.g. in_channels=-1); "
                "allowed: run one forward pass before mask_model"
            )
        leaf = name.rsplit(".", 1)[-1]
        if not (p.dim() >= 2 or (mask_bias and p.dim() == 1 and leaf == "bias")):
            continue
        candidates.append(name)
        chosen = (
            leaf not in ATTENTION
            if include is None
            else any(fnmatch.fnmatchcase(name, pat) for pat in include)
        )
        if not chosen:
            continue
        if len(shared[id(p)]) > 1:
            raise UserError(
                f"parameter {name!r} is shared as {shared[id(p)]}; allowed: untied parameters "
                "(exclude it)"
            )
        prefix, _, attr = name.rpartition(".")
        targets.append((name, model.get_submodule(prefix), attr, p))
    _matching("include", include or [], candidates, "maskable")
    if not targets:
        raise UserError(
            "no parameters to mask; allowed: a model with weights of dimension >= 2 "
            "not excluded by the include/exclude patterns"
        )
    return targets


def _matching(what: str, patterns: list[str], names: list[str], kind: str = "masked") -> list[str]:
    """The ``names`` matching one of ``patterns``; a pattern that matches
    none of them is an error naming what it could match."""
    for pat in patterns:
        if not any(fnmatch.fnmatchcase(n, pat) for n in names):
            raise UserError(
                f"{what} pattern {pat!r} matches no {kind} parameter; allowed: globs over "
                f"{', '.join(names[:8])}{', ...' if len(names) > 8 else ''}"
            )
    return [n for n in names if any(fnmatch.fnmatchcase(n, pat) for pat in patterns)]


class _BypassMasks:
    """State-dict pre-hook: make the masks of ``attrs`` no-ops while the module
    writes its own entries (no compute, no RNG use).

    Some modules (PyG's ``Linear``) write ``prefix + "weight"`` themselves;
    with a parametrization that would save the masked product under a key
    that loading rejects. :class:`_DropKeys` removes it again afterwards.
    """

    def __init__(self, attrs: Sequence[str]):
        self.attrs = tuple(attrs)

    def __call__(self, module, prefix, keep_vars):
        for a in self.attrs:
            module.parametrizations[a][0].bypass = True


class _DropKeys(_BypassMasks):
    """State-dict post-hook: end the bypass, drop ``prefix + attr`` entries."""

    def __call__(self, module, state_dict, prefix, local_metadata):
        for a in self.attrs:
            module.parametrizations[a][0].bypass = False
            state_dict.pop(prefix + a, None)


def attach(model: nn.Module, targets, rule, sparsity: float, scale: str, recipe: dict,
           scores: list[Tensor] | None, freeze: bool = False,
           unscaled: Sequence[str] = ()) -> MaskGroup:
    """Register a :class:`MaskParametrization` on every target of
    :func:`select_targets` (with its ``scores``, or none) and return their
    :class:`MaskGroup`, also reachable as ``get_mask_group(model)``. With
    ``freeze``, every parameter of the model stops requiring gradients (the
    flags come back with :func:`unmask_model`). The targets named in
    ``unscaled`` keep ``c = 1`` whatever the scale mode. The masks are
    all-ones until the caller refreshes or sets them."""
    group = MaskGroup(rule, sparsity, scale, recipe, unscaled)
    group.requires_grad = {n: p.requires_grad for n, p in model.named_parameters()}
    if freeze:
        for p in model.parameters():
            p.requires_grad_(False)
    by_module: dict[int, tuple[nn.Module, list[str]]] = {}
    for i, (name, module, attr, weight) in enumerate(targets):
        member = MaskParametrization(name, weight, None if scores is None else scores[i], group)
        group.members[name] = member
        group.targets[name] = (module, attr)
        parametrize.register_parametrization(module, attr, member, unsafe=True)
        by_module.setdefault(id(module), (module, []))[1].append(attr)
    for module, attrs in by_module.values():
        module.register_state_dict_pre_hook(_BypassMasks(attrs))
        module.register_state_dict_post_hook(_DropKeys(attrs))
    return group


def mask_model(
    model: nn.Module,
    sparsity: float = 0.9,
    rule="global",
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    weight_init: str = "kaiming-uniform",
    score_init: str = "kaiming-uniform",
    mask_bias: bool = False,
    scale: str = "auto",
    seed: int = 0,
    weight_gain: float = 1.0,
    scale_exclude: Sequence[str] | None = None,
) -> nn.Module:
    """Mask ``model`` in place (and return it): every selected weight ``w`` is
    re-drawn from ``(seed, weight_init)``, multiplied by ``weight_gain`` and
    frozen, and the module computes with ``c * w ⊙ m(scores)``; the scores
    are the only trainable tensors.

    Args:
        model: any module (e.g. a PyG model). Lazy layers (``in_channels=-1``)
            need one dry forward pass first.
        sparsity: fraction of weights removed, ``0 <= sparsity < 1``: the
            sparsity of the initial masks (change it with
            ``get_mask_group(model).refresh(sparsity)``) and the ``s`` of
            ``scaled-signed-constant``.
        rule: a name in :data:`~gnnmask.masks.RULES` or a
            :class:`~gnnmask.masks.rules.MaskRule`.
        include, exclude: glob patterns over parameter names (see
            :func:`select_targets`).
        weight_init, score_init: one of :data:`WEIGHT_INITS` / :data:`SCORE_INITS`.
        mask_bias: also mask 1-D ``bias`` parameters.
        scale: ``"keep"`` (multiply kept weights by ``1/sqrt(1 - sparsity)``),
            ``"none"`` or ``"auto"`` (see :func:`resolve_scale`).
        seed: seeds the weight and score generators.
        weight_gain: a constant ``g > 0`` the drawn weights are multiplied by
            (the ``init_scale`` of the untrained-tickets code, Huang et al.
            2022, and of the iterand code it builds on). In a ReLU network
            without biases it multiplies the logits of an ``L``-layer stack by
            ``g^L``: a temperature the binary mask cannot learn. Unlike
            ``scale="keep"`` it does not depend on the sparsity.
        scale_exclude: glob patterns over the masked parameters whose ``c``
            stays 1 (the binary mask ``w ⊙ m``) whatever ``scale`` says,
            e.g. ``["*att_src", "*att_dst"]``: GAT's attention logits are
            ``a^T [W h_i || W h_j]``, so ``scale="keep"`` on both ``a`` and
            ``W`` multiplies them by ``1 / (1 - s)``, a softmax temperature
            (20 at ``s = 0.95``); excluding ``a`` leaves ``1 / sqrt(1 - s)``,
            the factor of the transforms alone. Refused where ``scale``
            resolves to ``"none"`` (it would change nothing).

    Every parameter that is not masked (biases, norms, ...) is frozen too; the
    original ``requires_grad`` flags come back with :func:`unmask_model`. The
    masks are computed once here; after each change of the scores call
    ``get_mask_group(model).refresh()``, or register it on your optimiser
    with :func:`refresh_on_step`.
    """
    check_arg("mask_model", "model", model, nn.Module, "a torch.nn.Module")
    sparsity = check_sparsity(sparsity)
    rule = resolve_rule(rule)
    if rule.fixed:
        raise UserError(f"mask rule {rule.name!r} chooses no masks from scores; allowed: "
                        "a score rule, e.g. global or topk (fixed masks: see sparsify)")
    check_choice("weight init", weight_init, WEIGHT_INITS)
    check_choice("score init", score_init, SCORE_INITS)
    if isinstance(weight_gain, bool) or not isinstance(weight_gain, (int, float)) \
            or not math.isfinite(weight_gain) or weight_gain <= 0:
        raise UserError(f"weight_gain {weight_gain!r} is invalid; allowed: a finite number > 0")
    resolved = resolve_scale(scale, rule, weight_init)
    targets = select_targets(model, include, exclude, mask_bias)
    scale_exclude = _patterns("scale_exclude", scale_exclude)
    if scale_exclude and resolved == "none":
        raise UserError(f"scale_exclude {scale_exclude!r} has no effect: scale {scale!r} resolves "
                        "to 'none'; allowed: scale keep, layer or unit")
    unscaled = _matching("scale_exclude", scale_exclude or [], [name for name, *_ in targets])
    recipe = dict(
        kind="mask_model", rule=rule.name, sparsity=sparsity, weight_init=weight_init,
        score_init=score_init, scale=resolved, mask_bias=bool(mask_bias), seed=int(seed),
        include=_patterns("include", include), exclude=_patterns("exclude", exclude),
        **({"weight_gain": float(weight_gain)} if weight_gain != 1 else {}),
        **({"scale_exclude": scale_exclude} if scale_exclude else {}),
    )
    weights = [p for *_, p in targets]
    init_weights_(weights, weight_init, seed, sparsity)
    if weight_gain != 1:
        with torch.no_grad():
            for w in weights:
                w.mul_(weight_gain)
    scores = init_scores(weights, score_init, seed)
    group = attach(model, targets, rule, sparsity, resolved, recipe, scores, freeze=True,
                   unscaled=unscaled)
    group.refresh()
    return model


def get_mask_group(model: nn.Module) -> MaskGroup:
    """The :class:`MaskGroup` of a masked model (or of any of its sub-modules)."""
    check_arg("get_mask_group", "model", model, nn.Module, "a masked torch.nn.Module")
    # every parametrization holds its group: nothing is attached to the model itself
    group = next((m.group for m in model.modules() if isinstance(m, MaskParametrization)), None)
    if group is None:
        raise UserError("model is not masked; allowed: a model returned by mask_model or "
                        "sparsify")
    return group


def is_masked(model: nn.Module) -> bool:
    """Whether ``model`` (or a sub-module) carries masks."""
    return any(isinstance(m, MaskParametrization) for m in model.modules())


def score_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable score tensors, in target order (empty for :func:`sparsify` masks)."""
    return [m.scores for m in get_mask_group(model).members.values() if m.scores is not None]


def refresh_on_step(optimizer: torch.optim.Optimizer, model: nn.Module):
    """Refresh ``model``'s masks after every ``optimizer.step()`` (a step
    post-hook on this optimiser only). Returns the hook's handle
    (``handle.remove()`` undoes it)."""
    check_arg("refresh_on_step", "optimizer", optimizer, torch.optim.Optimizer,
              "a torch.optim.Optimizer, then the model: refresh_on_step(optimizer, model)")
    group = get_mask_group(model)
    return optimizer.register_step_post_hook(lambda opt, args, kwargs: group.refresh())


@torch.no_grad()
def unmask_model(model: nn.Module) -> nn.Module:
    """Bake the current masks into plain weights (``c w ⊙ m``: zeros where
    removed), remove parametrizations, scores and hooks, restore the
    ``requires_grad`` flags, and return the now ordinary model. Its output
    equals the masked model's output in eval mode."""
    group = get_mask_group(model)
    for module, _ in group.targets.values():
        # torch's deepcopy of a parametrized module shares its generated class;
        # removing a parametrization deletes a property from that class, which
        # would break the other copy. Give each module a class of its own first.
        cls = type(module)
        if parametrize.is_parametrized(module) and "_gnnmask_own" not in cls.__dict__:
            body = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
            module.__class__ = type(cls.__name__, cls.__bases__, {**body, "_gnnmask_own": True})
    for name, (module, attr) in group.targets.items():
        member = group.members[name]
        member.eval()  # the stored, deterministic mask
        parametrize.remove_parametrizations(module, attr, leave_parametrized=True)
        # Removed by value: handles of a deep-copied model would point at the
        # original's hook dicts.
        for hooks in (module._state_dict_pre_hooks, module._state_dict_hooks):
            for key in [k for k, h in hooks.items() if isinstance(h, _BypassMasks)]:
                del hooks[key]
    for name, p in model.named_parameters():
        p.requires_grad_(group.requires_grad.get(name, True))
    return model
