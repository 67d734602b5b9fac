"""Fixed masks over trainable weights (gnnmask.masks.sparse)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch_geometric.nn.models import GCN

from gnnmask.errors import UserError
from gnnmask.masks import (
    get_mask_group,
    layer_densities,
    prune_and_regrow,
    select_masks,
    sparsify,
    unmask_model,
    update_masks,
)

F_IN = 6


def gcn(seed=0):
    torch.manual_seed(seed)
    return GCN(F_IN, 32, num_layers=3, out_channels=4)


def kept(model):
    return {k: int(v.sum()) for k, v in get_mask_group(model).masks().items()}


def sizes(model):
    return {k: v.numel() for k, v in get_mask_group(model).masks().items()}


@pytest.mark.parametrize("distribution", ["uniform", "erk", "global"])
@pytest.mark.parametrize("s", [0.5, 0.9, 0.99])
def test_exact_overall_sparsity_for_every_distribution(distribution, s):
    model = sparsify(gcn(), sparsity=s, distribution=distribution, seed=1)
    n = sum(sizes(model).values())
    assert sum(kept(model).values()) == n - math.floor(s * n + 0.5)
    achieved = get_mask_group(model).achieved_sparsity()
    assert achieved["overall"] == math.floor(s * n + 0.5) / n
    # pruned entries are stored as zeros; kept ones keep their value
    for name, mask in get_mask_group(model).masks().items():
        module, attr = get_mask_group(model).targets[name]
        w = module.parametrizations[attr].original
        assert (w[~mask] == 0).all()


def test_uniform_is_within_one_entry_per_layer():
    model = sparsify(gcn(), sparsity=0.9, distribution="uniform")
    for name, k in kept(model).items():
        assert abs(k - 0.1 * sizes(model)[name]) <= 1, name


def test_erk_densities_by_hand():
    # two layers, [out, in]: ratios (a+b)/(ab) = 0.5 and 2/3... solve eps by hand
    shapes = [(4, 4), (2, 6)]
    d = layer_densities(shapes, 0.5, "erk")
    r = [8 / 16, 8 / 12]
    eps = 0.5 * 28 / (r[0] * 16 + r[1] * 12)
    assert d == pytest.approx([eps * r[0], eps * r[1]])
    assert d[0] * 16 + d[1] * 12 == pytest.approx(14)
    # a small layer whose density would exceed 1 is kept dense, eps re-solved
    d = layer_densities([(100, 100), (2, 100)], 0.5, "erk")
    assert d[1] == 1.0 and d[0] * 10000 + 200 == pytest.approx(0.5 * 10200)
    assert layer_densities(shapes, 0.3, "uniform") == [0.7, 0.7]


def test_erk_on_a_gcn_keeps_the_classifier_denser():
    model = sparsify(gcn(), sparsity=0.9, distribution="erk")
    per = get_mask_group(model).achieved_sparsity()["per_tensor"]
    assert per["convs.2.lin.weight"] < per["convs.1.lin.weight"]


def test_given_scores_keep_the_largest_and_missing_scores_are_refused():
    model = gcn()
    scores = {n: p.detach().abs() for n, p in model.named_parameters() if p.dim() == 2}
    sparsify(model, sparsity=0.75, scores=scores)
    for name, mask in get_mask_group(model).masks().items():
        assert scores[name][~mask].max() <= scores[name][mask].min()
    with pytest.raises(UserError, match="scores missing for"):
        sparsify(gcn(), scores={"convs.0.lin.weight": torch.ones(32, F_IN)})


def test_select_masks_global_pools_the_scores():
    scores = {"a": torch.arange(10.0), "b": torch.arange(10.0, 20.0)}
    masks = select_masks(scores, 0.6, "global")
    assert int(masks["a"].sum()) == 0 and int(masks["b"].sum()) == 8


def test_deterministic_under_a_seed():
    a = get_mask_group(sparsify(gcn(), 0.8, "erk", seed=3)).masks()
    b = get_mask_group(sparsify(gcn(), 0.8, "erk", seed=3)).masks()
    c = get_mask_group(sparsify(gcn(), 0.8, "erk", seed=4)).masks()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def _graph():
    g = torch.Generator().manual_seed(5)
    return torch.randn(20, F_IN, generator=g), torch.randint(0, 20, (2, 60), generator=g)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_pruned_entries_stay_exactly_zero_through_training(optimizer):
    x, ei = _graph()
    model = sparsify(gcn(), sparsity=0.8, distribution="erk")
    group = get_mask_group(model)
    opt = {"adam": lambda p: torch.optim.Adam(p, lr=0.05, weight_decay=5e-4),
           "adamw": lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1),
           "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=5e-4),
           }[optimizer](model.parameters())
    before = {k: v.clone() for k, v in group.masks().items()}
    for _ in range(50):
        opt.zero_grad()
        model(x, ei).square().mean().backward()
        for name, mask in group.masks().items():
            module, attr = group.targets[name]
            w = module.parametrizations[attr].original
            assert (w.grad[~mask] == 0).all()
            assert (getattr(module, attr)[~mask] == 0).all()  # effective weight
        opt.step()
    for name, mask in group.masks().items():
        module, attr = group.targets[name]
        w = module.parametrizations[attr].original
        assert torch.equal(mask, before[name])
        assert (w[~mask] == 0).all() and (w[mask] != 0).any()
        for state in opt.state[w].values():
            if state.shape == w.shape:
                assert (state[~mask] == 0).all()
    assert group.achieved_sparsity()["overall"] == pytest.approx(0.8, abs=1e-3)


def test_prune_and_regrow_keeps_the_count_and_resets_the_entries():
    x, ei = _graph()
    model = sparsify(gcn(), sparsity=0.7, seed=2)
    group = get_mask_group(model)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        model(x, ei).square().mean().backward()
        opt.step()
    name = "convs.1.lin.weight"
    module, attr = group.targets[name]
    w = module.parametrizations[attr].original
    mask = group.masks()[name].reshape(-1)
    count = int(mask.sum())
    drop = mask.nonzero().view(-1)[:5]
    grow = (~mask).nonzero().view(-1)[:5]
    prune_and_regrow(model, name, drop, grow, optimizer=opt)
    mask = group.masks()[name].reshape(-1)
    assert int(mask.sum()) == count
    assert not mask[drop].any() and mask[grow].all()
    assert (w.view(-1)[drop] == 0).all() and (w.view(-1)[grow] == 0).all()
    for state in opt.state[w].values():
        if state.shape == w.shape:
            assert (state.view(-1)[grow] == 0).all() and (state.view(-1)[drop] == 0).all()
    prune_and_regrow(model, name, grow[:2], drop[:2], value=0.5)
    assert (w.view(-1)[drop[:2]] == 0.5).all()
    with pytest.raises(UserError, match="distinct active entries"):
        prune_and_regrow(model, name, drop[2:3], grow[:1])
    with pytest.raises(UserError, match="distinct inactive entries"):
        prune_and_regrow(model, name, grow[2:3], grow[3:4])
    changes = update_masks(model, {name: torch.ones_like(group.masks()[name])})
    assert changes[name][0] == 0 and changes[name][1] == mask.numel() - count


def test_unmask_gives_a_plain_model_with_zeros_and_the_same_output():
    x, ei = _graph()
    model = sparsify(gcn(), sparsity=0.9)
    model.eval()
    out = model(x, ei)
    removed = sum(sizes(model).values()) - sum(kept(model).values())
    unmask_model(model)
    assert torch.equal(model(x, ei), out)
    zeros = sum(int((p == 0).sum()) for n, p in model.named_parameters() if p.dim() == 2)
    assert zeros == removed
    assert all(p.requires_grad for p in model.parameters())


def test_bad_distribution_and_names():
    with pytest.raises(UserError, match="unknown density distribution 'er'; allowed: uniform"):
        sparsify(gcn(), distribution="er")
    model = sparsify(gcn())
    with pytest.raises(UserError, match="no masked tensor named 'nope'"):
        update_masks(model, {"nope": torch.ones(1)})
    with pytest.raises(UserError, match="has shape"):
        update_masks(model, {"convs.0.lin.weight": torch.ones(2, 2)})


def test_sparsify_any_module():
    lin = sparsify(nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 3)), 0.5)
    assert sum(kept(lin).values()) == 65
