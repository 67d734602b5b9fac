"""The straight-through parametrization and explicit refresh (gnnmask.masks.core)."""

from __future__ import annotations

import copy
import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from gnnmask.masks import (
    RULES,
    get_mask_group,
    mask_model,
    refresh_on_step,
    score_parameters,
    sparsify,
    unmask_model,
)

SCORE_RULES = [name for name, rule in RULES.items() if not rule.fixed]


def masked_linear(rule="global", sparsity=0.5, scale="none", seed=0):
    torch.manual_seed(seed)
    return mask_model(nn.Linear(8, 6, bias=False), sparsity=sparsity, rule=rule, scale=scale,
                      seed=seed)


@pytest.mark.parametrize("scale", ["none", "keep"])
@pytest.mark.parametrize("rule", ["global", "topk"])
def test_straight_through_gradient_matches_hand_derivation(rule, scale):
    lin = masked_linear(rule, scale=scale)
    w = lin.parametrizations.weight.original.detach()
    s = lin.parametrizations.weight[0].scores
    m = get_mask_group(lin).masks()["weight"]
    c = math.sqrt(2.0) if scale == "keep" else 1.0
    x, g_out = torch.randn(5, 8), torch.randn(5, 6)
    (lin(x) * g_out).sum().backward()
    # y = x (c w ⊙ m)^T  =>  dL/dW = g_out^T x ;  dL/ds := dL/dm = c w ⊙ dL/dW
    # (topk ranks |s|: dL/d|s| := dL/dm, then dL/ds = sign(s) dL/d|s|)
    sign = s.detach().sign() if rule == "topk" else 1.0
    assert torch.allclose(s.grad, sign * c * w * (g_out.t() @ x), atol=1e-6)
    assert torch.allclose(lin(x), x @ (c * w * m).t(), atol=1e-6)
    assert int(m.sum()) == 24  # half of 48 kept


@pytest.mark.parametrize("rule", SCORE_RULES)
def test_in_place_change_of_the_stored_weight_shows_in_the_next_forward(rule):
    lin = masked_linear(rule).eval()
    before = lin.weight.clone()
    with torch.no_grad():
        lin.parametrizations.weight.original.mul_(2.0)
    assert torch.equal(lin.weight, 2.0 * before)


@pytest.mark.parametrize("rule", SCORE_RULES)
def test_writes_into_the_effective_weight_never_leak_into_later_passes(rule):
    lin = masked_linear(rule).eval()
    before = lin.weight.clone()
    with torch.no_grad():
        lin.weight.mul_(0.0)
    assert torch.equal(lin.weight, before) and before.abs().sum() > 0
    lin.reset_parameters()  # nn.Linear initialises `weight` in place
    assert torch.equal(lin.weight, before)


def test_same_for_masks_over_trainable_weights():
    torch.manual_seed(0)
    lin = sparsify(nn.Linear(8, 6), sparsity=0.5)
    before = lin.weight.clone()
    with torch.no_grad():
        lin.weight.mul_(0.0)
    assert torch.equal(lin.weight, before)
    with torch.no_grad():
        lin.parametrizations.weight.original.add_(1.0)
    mask = get_mask_group(lin).masks()["weight"]
    assert torch.equal(lin.weight, (before + 1.0) * mask)


def test_masks_change_only_on_refresh():
    lin = masked_linear("global")
    group = get_mask_group(lin)
    old = group.masks()["weight"].clone()
    with torch.no_grad():  # a manual update of the scores
        lin.parametrizations.weight[0].scores.neg_()
    assert torch.equal(group.masks()["weight"], old)  # nothing inferred
    group.refresh()
    assert torch.equal(group.masks()["weight"], ~old)  # all 48 scores distinct
    group.refresh(0.75)
    assert group.sparsity == 0.75 and int(group.masks()["weight"].sum()) == 12


@pytest.mark.parametrize("impl", ["foreach", "fused"])
def test_refresh_on_step_follows_any_optimizer_step(graph, stack, impl):
    model = mask_model(stack(), sparsity=0.7)
    group = get_mask_group(model)
    opt = torch.optim.Adam(score_parameters(model), lr=0.5, **{impl: True})
    handle = refresh_on_step(opt, model)
    model(*graph).sum().backward()
    old = {k: v.clone() for k, v in group.masks().items()}
    opt.step()
    assert any(not torch.equal(old[k], v) for k, v in group.masks().items())
    handle.remove()
    now = {k: v.clone() for k, v in group.masks().items()}
    model(*graph).sum().backward()
    opt.step()  # no hook: the masks stay as they are until refreshed
    assert all(torch.equal(now[k], v) for k, v in group.masks().items())


def test_retained_graph_refuses_a_backward_across_a_refresh(graph, stack):
    model = mask_model(stack(), sparsity=0.5)
    out = model(*graph)
    out.sum().backward(retain_graph=True)
    with torch.no_grad():
        for s in score_parameters(model):
            s.neg_()
    get_mask_group(model).refresh()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_state_dict_carries_masks_and_scale(graph, stack):
    model = mask_model(stack(), sparsity=0.6, scale="keep", seed=1)
    group = get_mask_group(model)
    with torch.no_grad():
        for s in score_parameters(model):
            s.normal_()
    group.refresh(0.3)
    fresh = mask_model(stack(), sparsity=0.6, scale="keep", seed=1)
    fresh.load_state_dict(model.state_dict())  # no refresh: the stored state is complete
    model.eval(), fresh.eval()
    assert torch.equal(model(*graph), fresh(*graph))
    keys = set(model.state_dict())
    assert {"convs.0.lin.parametrizations.weight.0.mask",
            "convs.0.lin.parametrizations.weight.0.scale"} <= keys


def test_dense_gradient_matches_autograd_of_an_unmasked_copy(graph, stack):
    model = sparsify(stack(), sparsity=0.8, distribution="erk", seed=2)
    plain = unmask_model(copy.deepcopy(model))
    group = get_mask_group(model)
    group.track_dense_grad = True
    model(*graph).square().sum().backward()
    plain(*graph).square().sum().backward()
    grads = group.dense_grads()
    for name, grad in grads.items():
        expected = plain.get_parameter(name).grad
        assert torch.allclose(grad, expected, atol=1e-6), name
        masked = group.members[name].mask
        assert (grad[~masked] != 0).any()  # the gradient of pruned entries too
    assert all(g is None for g in group.dense_grads().values())  # read once, cleared
    group.track_dense_grad = False
    model(*graph).sum().backward()
    assert all(g is None for g in group.dense_grads().values())


def test_library_changes_no_process_state():
    code = """
import importlib, warnings, torch
import torch_geometric.datasets, torch_geometric.nn, scipy.sparse, networkx  # their own filters
optim = importlib.import_module("torch.optim.optimizer")
hooks = len(optim._global_optimizer_post_hooks)
filters = list(warnings.filters)
import gnnmask, gnnmask.masks, gnnmask.models, gnnmask.train, gnnmask.methods, gnnmask.metrics
from gnnmask.train import RunConfig, train
from gnnmask.data import load_dataset
data = load_dataset("csbm", nodes=120, classes=2, features=4)
train(RunConfig(method="ugt", epochs=2, hidden=8, layer_metrics="none"), data=data)
assert len(optim._global_optimizer_post_hooks) == hooks
assert warnings.filters == filters, "warning filters changed"
assert torch.tensor([1e-39]).mul(1.0).item() != 0.0, "flush-to-zero turned on"
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.parametrize("scale", ["layer", "unit"])
def test_per_layer_and_per_unit_scales_follow_the_kept_fraction(stack, scale):
    model = mask_model(stack((6, 40, 30, 3)), sparsity=0.7, rule="global", scale=scale)
    group = get_mask_group(model)
    for name, member in group.members.items():
        mask = member.mask
        module, attr = group.targets[name]
        w = module.parametrizations[attr].original.detach()
        if scale == "layer":
            c = math.sqrt(mask.numel() / int(mask.sum()))
            assert member.scale.dim() == 0 and float(member.scale) == pytest.approx(c)
            expected = w * mask * c
        else:
            kept = mask.sum(1, keepdim=True).float()
            c = torch.where(kept > 0, torch.sqrt(mask.shape[1] / kept.clamp(min=1)), 1.0)
            assert torch.allclose(member.scale, c)
            expected = w * mask * c
        assert torch.allclose(getattr(module, attr), expected)
    # the per-layer fractions differ under a global threshold; the scales follow them
    assert len({round(float(m.scale.mean()), 6) for m in group.members.values()}) > 1
