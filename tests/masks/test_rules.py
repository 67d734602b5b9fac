"""Mask rules: exact selection, gradients of the stochastic rules, the registry."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gnnmask.errors import UserError
from gnnmask.masks import (
    RULES,
    MaskRule,
    get_mask_group,
    mask_model,
    register_rule,
    resolve_rule,
    score_parameters,
)
from gnnmask.masks.rules import BETA, GAMMA, ZETA, GlobalThreshold, l0_penalty

F_IN = 6


@pytest.mark.parametrize("s", [0.0, 0.1, 0.5, 0.73, 0.9, 0.99])
def test_global_rule_exact_overall_sparsity_keeps_largest_scores(stack, s):
    model = mask_model(stack((F_IN, 33, 17, 5)), sparsity=s, rule="global")
    group = get_mask_group(model)
    keep = torch.cat([m.view(-1) for m in group.masks().values()])
    removed = int((~keep).sum())
    assert removed == math.floor(s * keep.numel() + 0.5)
    assert group.achieved_sparsity()["overall"] == removed / keep.numel()
    scores = torch.cat([p.detach().view(-1) for p in score_parameters(model)])
    if 0 < removed < keep.numel():
        assert scores[~keep].max() <= scores[keep].min()
    # the layers end up at different sparsities (one threshold over all)
    per = group.achieved_sparsity()["per_tensor"]
    assert s in (0.0,) or len(set(per.values())) > 1


@pytest.mark.parametrize("s", [0.0, 0.25, 0.5, 0.9])
def test_topk_rule_exact_per_tensor_sparsity_keeps_largest_magnitudes(stack, s):
    model = mask_model(stack((F_IN, 33, 17, 5)), sparsity=s, rule="topk")
    group = get_mask_group(model)
    for name, keep in group.masks().items():
        n = keep.numel()
        assert int(keep.sum()) == math.floor((1 - s) * n + 0.5), name
        s_abs = group.members[name].scores.detach().abs()
        if 0 < keep.sum() < n:
            assert s_abs[~keep].max() <= s_abs[keep].min()


@pytest.mark.parametrize("rule", ["bernoulli", "hard-concrete"])
def test_learnt_sparsity_rules_evaluate_the_sign_of_the_scores(stack, rule):
    model = mask_model(stack(), sparsity=0.5, rule=rule)
    group = get_mask_group(model)
    for name, keep in group.masks().items():
        assert torch.equal(keep, group.members[name].scores.detach() > 0)
    assert group.scale == "none"  # learnt sparsity: no keep factor by default


def test_constant_scores_tie_in_pooled_order(stack):
    model = mask_model(stack(), sparsity=0.6, rule="global", score_init="constant")
    keep = torch.cat([m.view(-1) for m in get_mask_group(model).masks().values()])
    k = math.floor(0.6 * keep.numel() + 0.5)
    assert int((~keep).sum()) == k and not keep[:k].any() and keep[k:].all()


def test_bernoulli_gradient_is_straight_through_the_sample():
    torch.manual_seed(0)
    lin = mask_model(nn.Linear(4, 3, bias=False), rule="bernoulli", sparsity=0.0)
    w = lin.parametrizations.weight.original.detach()
    s = lin.parametrizations.weight[0].scores
    x, g_out = torch.randn(5, 4), torch.randn(5, 3)
    (lin(x) * g_out).sum().backward()
    p = torch.sigmoid(s.detach())
    assert torch.allclose(s.grad, (g_out.t() @ x) * w * p * (1 - p), atol=1e-6)
    lin.eval()  # deterministic: m = [s > 0]
    assert torch.equal(lin(x), x @ (w * (s > 0)).t())


def test_hard_concrete_gates_and_l0_penalty():
    torch.manual_seed(0)
    lin = mask_model(nn.Linear(50, 40, bias=False), rule="hard-concrete", sparsity=0.0)
    group = get_mask_group(lin)
    s = lin.parametrizations.weight[0].scores
    w = lin.parametrizations.weight.original.detach()
    z = lin.weight / w
    assert z.min() >= 0 and z.max() <= 1 and (z == 0).any() and (z == 1).any()
    penalty = group.penalty()
    shift = BETA * math.log(-GAMMA / ZETA)
    assert torch.allclose(penalty, torch.sigmoid(s - shift).mean())
    assert torch.equal(penalty, l0_penalty([s]))
    penalty.backward()
    assert s.grad is not None and (s.grad > 0).all()
    lin.eval()
    assert torch.equal(lin.weight, torch.where(s > 0, w, 0.0))
    assert get_mask_group(mask_model(nn.Linear(3, 3), rule="global")).penalty() is None


def test_resolver_takes_names_and_instances_and_names_the_allowed():
    assert isinstance(resolve_rule("global"), GlobalThreshold)
    rule = GlobalThreshold()
    assert resolve_rule(rule) is rule
    with pytest.raises(UserError,
                       match="unknown mask rule 'magnitude'; allowed: global, erk, topk"):
        resolve_rule("magnitude")
    with pytest.raises(UserError, match="chooses no masks from scores"):
        mask_model(nn.Linear(3, 3), rule="fixed")


def test_a_new_rule_is_one_subclass(stack):
    class BottomK(MaskRule):
        """Keep the entries of *smallest* score, per tensor (a test rule)."""

        name = "bottomk-test"

        def keep(self, scores, sparsity):
            n = scores.numel()
            kept = n - math.floor(sparsity * n + 0.5)
            keep = torch.zeros(n, dtype=torch.bool)
            keep[scores.detach().view(-1).argsort()[:kept]] = True
            return keep.view(scores.shape)

    try:
        register_rule(BottomK)
        model = mask_model(stack(), sparsity=0.75, rule="bottomk-test")
        group = get_mask_group(model)
        for name, keep in group.masks().items():
            s = group.members[name].scores.detach()
            assert s[keep].max() <= s[~keep].min()
        model(torch.randn(4, F_IN), torch.tensor([[0, 1], [1, 2]])).sum().backward()
        assert all(p.grad is not None for p in score_parameters(model))
        with pytest.raises(ValueError, match="registered twice"):
            register_rule(type("Other", (BottomK,), {}))
    finally:
        RULES.pop("bottomk-test", None)


def test_erk_rule_splits_the_budget_by_layer_and_keeps_largest_raw_scores(stack):
    from gnnmask.masks import layer_densities

    model = mask_model(stack((F_IN, 40, 30, 3)), sparsity=0.8, rule="erk")
    group = get_mask_group(model)
    masks = group.masks()
    n = sum(m.numel() for m in masks.values())
    assert sum(int((~m).sum()) for m in masks.values()) == math.floor(0.8 * n + 0.5)
    densities = layer_densities([m.shape for m in masks.values()], 0.8, "erk")
    for (name, keep), d in zip(masks.items(), densities):
        assert abs(int(keep.sum()) - d * keep.numel()) <= 1
        s = group.members[name].scores.detach()
        if 0 < keep.sum() < keep.numel():
            assert s[~keep].max() <= s[keep].min()
