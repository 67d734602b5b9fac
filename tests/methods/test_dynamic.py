"""Dynamic sparse training (SET, RigL), R_s, sparse-aware initialisations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gnnmask.data import load_dataset
from gnnmask.masks import get_mask_group, sparsify
from gnnmask.masks.init import eoi_matrix, generator, sparse_init
from gnnmask.methods.dynamic import topology_update
from gnnmask.train import RunConfig, resolve_config, train
from gnnmask.train.engine import build, make_optimizer, training_step


@pytest.fixture(scope="module")
def csbm():
    return load_dataset("csbm", nodes=240, classes=3, features=12, seed=0)


def small(**kw):
    base = dict(dataset="csbm", layers=3, hidden=16, epochs=30, device="cpu",
                layer_metrics="none")
    return RunConfig(**{**base, **kw})


@pytest.mark.parametrize("method", ["set-rigl", "rigl"])
def test_sparsity_is_exact_after_every_update_and_r_s_is_the_union(csbm, method):
    config = resolve_config(small(method=method, sparsity=0.8,
                                  extra={"update_interval": 3, "update_end": 1.0}))
    model, strategy = build(config, csbm)
    optimizer = make_optimizer(config, strategy, model)
    group = get_mask_group(model)
    counts = {n: int(m.sum()) for n, m in group.masks().items()}
    union = {n: m.clone() for n, m in group.masks().items()}
    rates, changed = [], 0
    for epoch in range(config.epochs):
        strategy.on_epoch_start(epoch, model)
        before = {n: m.clone() for n, m in group.masks().items()}
        training_step(config, model, strategy, optimizer, csbm, epoch)
        for n, m in group.masks().items():
            assert int(m.sum()) == counts[n]  # exact, layer by layer
            changed += int((m != before[n]).sum())
            union[n] |= m
            module, attr = group.targets[n]
            assert (module.parametrizations[attr].original[~m] == 0).all()
        rates.append(strategy.itop_rate())
        total = sum(u.numel() for u in union.values())
        assert rates[-1] == pytest.approx(sum(int(u.sum()) for u in union.values()) / total)
    assert changed > 0 and len(strategy.updates) == 9
    assert rates == sorted(rates) and rates[-1] > rates[0]


def _one_layer():
    torch.manual_seed(0)
    lin = sparsify(nn.Linear(6, 4, bias=False), sparsity=0.5, seed=1)
    return lin


def test_rigl_grows_the_largest_dense_gradients_by_hand():
    lin = _one_layer()
    group = get_mask_group(lin)
    w = lin.parametrizations.weight.original
    mask = group.masks()["weight"].clone()
    with torch.no_grad():  # known magnitudes: the active entries are 1, 2, ..., 12
        w[mask] = torch.arange(1.0, 13.0)
    grad = torch.zeros(4, 6)
    inactive = (~mask).nonzero()
    grad[tuple(inactive[5])] = 9.0  # the two largest gradients among inactive entries
    grad[tuple(inactive[7])] = -8.0
    grad[tuple(inactive[0])] = 1.0
    group.track_dense_grad = True  # RigL's grow scores: |dL/dW| of a recorded pass
    lin.parametrizations.weight[0].dense_grad = grad
    from gnnmask.methods import get_method_class

    rigl = get_method_class("rigl")(resolve_config(small(method="rigl")))
    changed = topology_update(lin, 2 / 12, rigl.grow_scores(lin))
    new = group.masks()["weight"]
    assert changed == {"weight": 2} and int(new.sum()) == 12
    dropped = mask & ~new
    assert sorted(w.detach()[mask][~new[mask]].tolist()) == [0.0, 0.0]  # zeroed on drop
    assert dropped.sum() == 2
    # the two smallest magnitudes (1 and 2) went, the two largest |gradients| came in at 0
    grown = new & ~mask
    assert grown[tuple(inactive[5])] and grown[tuple(inactive[7])] and int(grown.sum()) == 2
    assert (w.detach()[grown] == 0).all()
    kept_values = sorted(w.detach()[new & mask].tolist())
    assert kept_values == list(map(float, range(3, 13)))


def test_set_rigl_regrows_uniformly_over_inactive_entries():
    """Chi-square test of the positions SET's regrowth picks (fixed seed)."""
    from gnnmask.masks import update_masks
    from gnnmask.methods import get_method_class

    strategy = get_method_class("set-rigl")(resolve_config(small(method="set-rigl")))
    lin = sparsify(nn.Linear(10, 10, bias=False), sparsity=0.5, seed=0)
    group = get_mask_group(lin)
    w = lin.parametrizations.weight.original
    with torch.no_grad():
        w.copy_(torch.arange(1.0, 101.0).view(10, 10) * group.masks()["weight"])
    start_mask, start_w = group.masks()["weight"].clone(), w.detach().clone()
    smallest = int(w.detach()[start_mask].argmin())
    dropped = start_mask.view(-1).nonzero().view(-1)[smallest]
    candidates = torch.cat([(~start_mask).view(-1).nonzero().view(-1), dropped.view(1)])
    hits = torch.zeros(100)
    trials = 3000
    for _ in range(trials):
        update_masks(lin, {"weight": start_mask})
        with torch.no_grad():
            w.copy_(start_w)
        topology_update(lin, 1 / 50, strategy.grow_scores(lin))  # drop 1, grow 1
        new = group.masks()["weight"].view(-1)
        assert int(new.sum()) == 50
        grown = (new & ~start_mask.view(-1)).nonzero().view(-1)
        hits[grown if grown.numel() else dropped] += 1
    assert int(hits.sum()) == trials and int(hits[candidates].sum()) == trials
    expected = trials / candidates.numel()
    chi2 = float(((hits[candidates] - expected) ** 2 / expected).sum())
    assert chi2 < 86.7  # chi-square with 50 degrees of freedom: p = 0.001


def test_regrown_weights_start_at_zero_with_zeroed_moments(csbm):
    config = resolve_config(small(method="rigl", sparsity=0.7, extra={"update_interval": 2}))
    model, strategy = build(config, csbm)
    optimizer = make_optimizer(config, strategy, model)
    group = get_mask_group(model)
    for epoch in range(2):
        strategy.on_epoch_start(epoch, model)
        before = {n: m.clone() for n, m in group.masks().items()}
        training_step(config, model, strategy, optimizer, csbm, epoch)
    for name, m in group.masks().items():
        grown = m & ~before[name]
        module, attr = group.targets[name]
        w = module.parametrizations[attr].original
        assert (w[grown] == 0).all()
        for state in optimizer.state[w].values():
            if state.shape == w.shape:
                assert (state[grown] == 0).all()
    assert any((m & ~before[n]).any() for n, m in group.masks().items())


def test_itop_recipe_explores_more(csbm):
    plain = train(small(method="rigl", sparsity=0.9, epochs=40), data=csbm)
    itop = train(small(method="rigl", sparsity=0.9, epochs=40, itop=True), data=csbm)
    assert itop["method"]["update_interval"] == 1 and itop["method"]["update_end"] == 1.0
    assert itop["method"]["itop_rate"] > plain["method"]["itop_rate"] > 0.1
    assert [r["itop_rate"] for r in itop["history"]] == sorted(
        r["itop_rate"] for r in itop["history"])


@pytest.mark.parametrize("shape, density", [((32, 32), 0.2), ((20, 50), 0.1), ((50, 20), 0.3),
                                            ((7, 64), 0.5), ((16, 16), 1 / 16)])
def test_eoi_is_orthogonal_at_exactly_the_density(shape, density):
    a, mask = eoi_matrix(shape, density, torch.Generator().manual_seed(0))
    n, m = shape
    a64 = a.double()
    gram = a64 @ a64.t() if n <= m else a64.t() @ a64
    assert torch.allclose(gram, torch.eye(min(n, m), dtype=torch.float64), atol=1e-5)
    assert int(mask.sum()) == math.floor(density * n * m + 0.5)
    assert (a[~mask] == 0).all()


def test_eoi_below_its_least_density_is_the_identity():
    a, mask = eoi_matrix((16, 16), 0.01, torch.Generator().manual_seed(0))
    assert torch.equal(a, torch.eye(16)) and int(mask.sum()) == 16


def test_gradient_flow_init_scales_each_unit_by_its_fan_in():
    mask = torch.zeros(200, 300, dtype=torch.bool)
    for j in range(200):
        mask[j, : 10 + j] = True  # unit j has 10 + j inputs
    weight, same = sparse_init(mask, "gradient-flow", generator(0))
    assert torch.equal(same, mask) and (weight[~mask] == 0).all()
    fan = mask.sum(1).float()
    var = (weight ** 2).sum(1) / fan  # per unit, over its kept inputs
    assert ((var * fan / 2).mean() - 1).abs() < 0.05  # E[w^2] = 2 / fan_in_j


@pytest.mark.parametrize("init", ["gradient-flow", "eoi"])
def test_sparse_inits_keep_the_exact_sparsity(csbm, init):
    record, model = train(small(method="random", sparsity=0.9, weight_init=init, epochs=2),
                          data=csbm, return_model=True)
    masks = get_mask_group(model).masks()
    n = sum(m.numel() for m in masks.values())
    assert sum(int((~m).sum()) for m in masks.values()) == math.floor(0.9 * n + 0.5)
    assert record["method"]["weight_init"] == init


def test_sparse_and_frozen_weight_inits_are_checked_per_method():
    from gnnmask.errors import UserError

    with pytest.raises(UserError, match="not a sparse initialisation"):
        resolve_config(small(method="rigl", weight_init="kaiming-normal"))
    with pytest.raises(UserError, match="frozen-weight --weight-init 'eoi'"):
        resolve_config(small(method="ugt", weight_init="eoi"))


def test_gradient_flow_is_recorded_and_matches_autograd(csbm):
    from gnnmask.metrics import gradient_flow

    record, model = train(small(method="rigl", epochs=4, grad_flow_every=2), data=csbm,
                          return_model=True)
    flows = record["gradient_flow"]
    assert [f["epoch"] for f in flows] == [-1, 1, 3]
    assert all(f["total"] > 0 for f in flows)
    model.eval()
    out = model(csbm.x, csbm.edge_index)
    loss = F.cross_entropy(out[csbm.train_mask], csbm.y[csbm.train_mask])
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [p for _, p in params])
    flow = gradient_flow(model, lambda m: m(csbm.x, csbm.edge_index),
                         lambda o: F.cross_entropy(o[csbm.train_mask], csbm.y[csbm.train_mask]))
    assert flow["total"] == pytest.approx(math.sqrt(sum(float(g.norm()) ** 2 for g in grads)),
                                          rel=1e-5)
    assert "convs.0.lin.weight" in flow["per_layer"]


@pytest.mark.parametrize("method", ["set-rigl", "rigl"])
def test_update_schedule_counts_the_steps_this_process_takes(csbm, method):
    # under --distributed with mini-batches each rank iterates its own share of
    # the training nodes: the engine says how many steps that is (Context)
    from gnnmask.methods import Context

    config = resolve_config(small(method=method, batch_size=10, epochs=4,
                                  extra={"update_end": 1.0}))
    _, alone = build(config, csbm)
    _, rank = build(config, csbm, Context(steps_per_epoch=3, world_size=2))
    assert alone.total_steps == 4 * -(-int(csbm.train_mask.sum()) // 10)
    assert rank.total_steps == 4 * 3


def test_mocanus_set_drops_each_sign_closest_to_zero_and_regrows_random_values():
    from gnnmask.methods.dynamic import signed_topology_update

    lin = sparsify(nn.Linear(10, 10, bias=False), sparsity=0.5, seed=0)
    group = get_mask_group(lin)
    w = lin.parametrizations.weight.original
    start = group.masks()["weight"].clone()
    values = torch.arange(1.0, 101.0).view(10, 10)
    values[::2] *= -1  # both signs among the active weights
    with torch.no_grad():
        w.copy_(values * start)
    active = w.detach()[start]
    pos, neg = active[active > 0], active[active < 0]
    n_pos, n_neg = int(0.3 * pos.numel()), int(0.3 * neg.numel())
    changed = signed_topology_update(lin, 0.3, generator(0))
    new = group.masks()["weight"]
    assert int(new.sum()) == int(start.sum()) and changed["weight"] == n_pos + n_neg
    kept = w.detach()[new & start & (w.detach() == values)]  # untouched survivors
    # the dropped ones are exactly the n_pos smallest positives and n_neg negatives
    # nearest zero; every survivor of each sign is farther from zero than they were
    assert sorted(kept[kept > 0].tolist()) == sorted(pos.tolist())[n_pos:]
    assert sorted(kept[kept < 0].tolist()) == sorted(neg.tolist())[:neg.numel() - n_neg]
    grown = w.detach()[new & ~start]
    assert grown.numel() > 0 and (grown != 0).all()  # random values, not zeros
    assert grown.abs().max() < 4 * math.sqrt(2 / 10) * 3  # from N(0, 2 / fan_in)
    assert (w.detach()[~new] == 0).all()


def test_mocanus_set_updates_after_every_epoch_but_the_last_at_a_constant_zeta(csbm):
    config = resolve_config(small(method="set", sparsity=0.8, epochs=6))
    record = train(config, data=csbm)
    updates = record["method"]["updates"]
    assert [u["step"] for u in updates] == [1, 2, 3, 4, 5]
    assert {u["fraction"] for u in updates} == {0.3} and record["method"]["zeta"] == 0.3
    assert record["method"]["achieved_sparsity"] == pytest.approx(0.8, abs=0.01)
    batched = resolve_config(small(method="set", epochs=3, batch_size=40))
    _, strategy = build(batched, csbm)
    steps = -(-int(csbm.train_mask.sum()) // 40)
    assert strategy.interval == steps and strategy.total_steps == 3 * steps
    assert [s for s in range(1, 3 * steps + 1) if strategy.updates_at(s)] == [steps, 2 * steps]


@pytest.mark.parametrize("kw, match", [
    (dict(extra={"drop_fraction": 0.5}), "unknown --extra key 'drop_fraction' for method "
                                         "'set'; allowed: zeta"),
    (dict(itop=True), "--itop is not used by method 'set'"),
    (dict(extra={"zeta": 1.0}), "--extra zeta=1.0 is invalid for method 'set'; allowed: a "
                                "fraction 0 < x < 1"),
])
def test_mocanus_set_refuses_the_rigl_schedule_options(kw, match):
    from gnnmask.errors import UserError

    with pytest.raises(UserError, match=match):
        resolve_config(small(method="set", **kw))
