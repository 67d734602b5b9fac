"""Attach score masks to any ``torch.nn.Module`` and take them off again."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from torch import nn
from torch.nn.parameter import is_lazy
from torch.nn.utils import parametrize

from gnnmask.errors import UserError, check_choice
from gnnmask.masks.core import RULES, SCALES, STOCHASTIC, MaskGroup, ScoreMask, check_sparsity
from gnnmask.masks.init import SCORE_INITS, WEIGHT_INITS, init_scores, init_weights_

#: Attention vectors of GATConv (``att_src``/``att_dst``/``att_edge``) and
#: GATv2Conv (``att``): shaped ``[1, heads, C]``, masked only when ``include``
#: names them.
ATTENTION = ("att", "att_src", "att_dst", "att_edge", "att_l", "att_r")
_GROUP_ATTR = "_mask_group"


def resolve_scale(scale: str, rule: str, weight_init: str) -> str:
    """``"auto"`` -> ``"keep"`` for ``global``/``topk`` unless the weights are
    ``scaled-signed-constant`` (which already folds ``1/sqrt(1 - s)`` into the
    weights), ``"none"`` for the stochastic rules (whose sparsity is learnt).

    Evidence for ``keep`` (Cora, width 64, 100 epochs, seed 0, test accuracy,
    ``none`` -> ``keep``): ugt 8 layers 0.064 -> 0.695, 16 layers 0.319 ->
    0.406 (seed 1: 0.319 -> 0.366), 32 layers 0.064 -> 0.103; edge-popup 8
    layers 0.671 -> 0.718, 16 layers 0.362 -> 0.357. Without it the signal
    fades by a factor ``sqrt(1 - s)`` per layer and deep GCNs without
    normalisation collapse to one class."""
    check_choice("scale", scale, SCALES)
    if scale != "auto":
        return scale
    if rule in STOCHASTIC or weight_init == "scaled-signed-constant":
        return "none"
    return "keep"


def _patterns(what: str, value) -> list[str] | None:
    if value is None:
        return None
    value = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(p, str) for p in value):
        raise UserError(f"{what} {value!r} is invalid; allowed: a list of glob patterns")
    return value


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
    for pat in include or []:
        if not any(fnmatch.fnmatchcase(n, pat) for n in candidates):
            raise UserError(
                f"include pattern {pat!r} matches no maskable parameter; allowed: globs over "
                f"{', '.join(candidates[:8])}{', ...' if len(candidates) > 8 else ''}"
            )
    if not targets:
        raise UserError(
            "no parameters to mask; allowed: a model with weights of dimension >= 2 "
            "not excluded by the include/exclude patterns"
        )
    return targets


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


class _BeginPass:
    """Forward pre-hook of a masked model: :meth:`MaskGroup.begin_pass`."""

    def __init__(self, group):
        self.group = group

    def __call__(self, module, args):
        self.group.begin_pass()


class _EndPass(_BeginPass):
    """Forward hook (also on errors): :meth:`MaskGroup.end_pass`."""

    def __call__(self, module, args, output):
        self.group.end_pass()


def mask_model(
    model: nn.Module,
    sparsity: float = 0.9,
    rule: str = "global",
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    weight_init: str = "kaiming-uniform",
    score_init: str = "kaiming-uniform",
    mask_bias: bool = False,
    scale: str = "auto",
    seed: int = 0,
) -> nn.Module:
    """Mask ``model`` in place (and return it): every selected weight ``w`` is
    re-drawn from ``(seed, weight_init)`` and frozen, and the module computes
    with ``c * w ⊙ m(scores)``; the scores are the only trainable tensors.

    Args:
        model: any module (e.g. a PyG model). Lazy layers (``in_channels=-1``)
            need one dry forward pass first.
        sparsity: fraction of weights removed, ``0 <= sparsity < 1``; the
            initial value of ``get_mask_group(model).sparsity`` and the ``s`` of
            ``scaled-signed-constant``.
        rule: one of :data:`RULES` (see :mod:`gnnmask.masks.core`).
        include, exclude: glob patterns over parameter names (see
            :func:`select_targets`).
        weight_init, score_init: one of :data:`WEIGHT_INITS` / :data:`SCORE_INITS`.
        mask_bias: also mask 1-D ``bias`` parameters.
        scale: ``"keep"`` (multiply kept weights by ``1/sqrt(1 - sparsity)``),
            ``"none"`` or ``"auto"`` (see :func:`resolve_scale`).
        seed: seeds the weight and score generators.

    Every parameter that is not masked (biases, norms, ...) is frozen too; the
    original ``requires_grad`` flags come back with :func:`unmask_model`.
    Two forward hooks on ``model`` prepare all effective weights once at the
    start of each of its forward passes (:meth:`MaskGroup.begin_pass`).
    """
    sparsity = check_sparsity(sparsity)
    check_choice("mask rule", rule, RULES)
    check_choice("weight init", weight_init, WEIGHT_INITS)
    check_choice("score init", score_init, SCORE_INITS)
    if is_masked(model):
        raise UserError("model is already masked; allowed: an unmasked model (see unmask_model)")
    resolved = resolve_scale(scale, rule, weight_init)
    targets = select_targets(model, include, exclude, mask_bias)
    recipe = dict(
        rule=rule, sparsity=sparsity, weight_init=weight_init, score_init=score_init,
        scale=resolved, mask_bias=bool(mask_bias), seed=int(seed),
        include=_patterns("include", include), exclude=_patterns("exclude", exclude),
    )
    group = MaskGroup(rule, sparsity, resolved, recipe)
    group.requires_grad = {n: p.requires_grad for n, p in model.named_parameters()}
    weights = [p for *_, p in targets]
    init_weights_(weights, weight_init, seed, sparsity)
    scores = init_scores(weights, score_init, seed)
    for p in model.parameters():
        p.requires_grad_(False)
    # Every target and score exists before the first parametrization is
    # registered, so scores are never targets and the group is complete.
    by_module: dict[int, tuple[nn.Module, list[str]]] = {}
    for (name, module, attr, _), s in zip(targets, scores):
        member = ScoreMask(name, s, group)
        group.members[name] = member
        group.targets[name] = (module, attr)
        parametrize.register_parametrization(module, attr, member, unsafe=True)
        by_module.setdefault(id(module), (module, []))[1].append(attr)
    for module, attrs in by_module.values():
        module.register_state_dict_pre_hook(_BypassMasks(attrs))
        module.register_state_dict_post_hook(_DropKeys(attrs))
    model.register_forward_pre_hook(_BeginPass(group))
    model.register_forward_hook(_EndPass(group), always_call=True)
    object.__setattr__(model, _GROUP_ATTR, group)
    return model


def get_mask_group(model: nn.Module) -> MaskGroup:
    """The :class:`MaskGroup` of a masked model (or of any of its sub-modules)."""
    group = model.__dict__.get(_GROUP_ATTR)
    if group is None:
        group = next((m.group for m in model.modules() if isinstance(m, ScoreMask)), None)
    if group is None:
        raise UserError("model is not masked; allowed: a model returned by mask_model")
    return group


def is_masked(model: nn.Module) -> bool:
    """Whether ``model`` (or a sub-module) carries score masks."""
    return _GROUP_ATTR in model.__dict__ or any(isinstance(m, ScoreMask) for m in model.modules())


def score_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable score tensors, in target order."""
    return [m.scores for m in get_mask_group(model).members.values()]


def unmask_model(model: nn.Module) -> nn.Module:
    """Bake the current deterministic masks into plain weights (zeros where
    removed, times ``c``), remove parametrizations, scores and hooks, restore
    the ``requires_grad`` flags, and return the now ordinary model. Its output
    equals the masked model's output in eval mode."""
    group = get_mask_group(model)
    group.fix()
    for module, _ in group.targets.values():
        # torch's deepcopy of a parametrized module shares its generated class;
        # removing a parametrization deletes a property from that class, which
        # would break the other copy. Give each module a class of its own first.
        cls = type(module)
        if parametrize.is_parametrized(module) and "_gnnmask_own" not in cls.__dict__:
            body = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
            module.__class__ = type(cls.__name__, cls.__bases__, {**body, "_gnnmask_own": True})
    for module, attr in group.targets.values():
        parametrize.remove_parametrizations(module, attr, leave_parametrized=True)
        # Removed by value: handles of a deep-copied model would point at the
        # original's hook dicts.
        for hooks in (module._state_dict_pre_hooks, module._state_dict_hooks):
            for key in [k for k, h in hooks.items() if isinstance(h, _BypassMasks)]:
                del hooks[key]
    for hooks in (model._forward_pre_hooks, model._forward_hooks):
        for key in [k for k, h in hooks.items() if isinstance(h, _BeginPass)]:
            del hooks[key]
            model._forward_hooks_always_called.pop(key, None)
    for name, p in model.named_parameters():
        p.requires_grad_(group.requires_grad.get(name, True))
    model.__dict__.pop(_GROUP_ATTR, None)
    return model

