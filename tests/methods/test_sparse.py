"""Sparse-training baselines: pruning at initialisation, lottery tickets, graph lottery tickets."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gnnmask.data import load_dataset
from gnnmask.errors import UserError
from gnnmask.masks import get_mask_group
from gnnmask.methods import get_method_class
from gnnmask.methods.lottery import pruning_levels
from gnnmask.methods.pruners import grasp_scores, snip_scores, synaptic_flow
from gnnmask.models import build_model
from gnnmask.train import RunConfig, resolve_config, train
from gnnmask.train.engine import build

SPARSE = ["random", "magnitude", "snip", "grasp", "synflow", "imp", "ugs"]


@pytest.fixture(scope="module")
def csbm():
    return load_dataset("csbm", nodes=240, classes=3, features=12, seed=0)


def small(**kw):
    base = dict(dataset="csbm", layers=2, hidden=16, epochs=6, device="cpu",
                layer_metrics="none")
    return RunConfig(**{**base, **kw})


def removed(model) -> tuple[int, int]:
    masks = get_mask_group(model).masks()
    return sum(int((~m).sum()) for m in masks.values()), sum(m.numel() for m in masks.values())


@pytest.mark.parametrize("method", SPARSE)
@pytest.mark.parametrize("sparsity", [0.5, 0.9])
def test_every_method_ends_at_exactly_its_sparsity(csbm, method, sparsity):
    extra = {"synflow_iterations": 5} if method == "synflow" else {}
    record, model = train(small(method=method, sparsity=sparsity, extra=extra), data=csbm,
                          return_model=True)
    k, n = removed(model)
    assert k == math.floor(sparsity * n + 0.5)
    assert record["method"]["achieved_sparsity"] == k / n
    assert set(record["method"]["per_layer_sparsity"]) == set(get_mask_group(model).members)
    for name, (module, attr) in get_mask_group(model).targets.items():  # trained, yet zero
        w = module.parametrizations[attr].original
        assert (w[~get_mask_group(model).masks()[name]] == 0).all()


@pytest.mark.parametrize("method", ["random", "snip", "synflow", "imp"])
def test_deterministic_under_a_seed(csbm, method):
    extra = {"synflow_iterations": 3} if method == "synflow" else {}
    a = train(small(method=method, seed=3, epochs=3, extra=extra), data=csbm)
    b = train(small(method=method, seed=3, epochs=3, extra=extra), data=csbm)
    strip = lambda h: [{k: v for k, v in r.items() if k != "step_s"} for r in h]  # noqa: E731
    assert strip(a["history"]) == strip(b["history"])


def _linear_gcn(csbm):
    torch.manual_seed(0)
    return build_model("gcn", csbm.num_features, 5, csbm.num_classes, 2, dropout=0.0,
                       bias=False, activation="identity")


def _dense_adjacency(csbm):
    from gnnmask.models.deep import normalized_adjacency

    return normalized_adjacency(csbm.edge_index, csbm.num_nodes).to_dense()


def _loss(csbm, temperature=1.0):
    return lambda out: F.cross_entropy(out[csbm.train_mask] / temperature,
                                       csbm.y[csbm.train_mask])


def test_snip_scores_by_hand_on_a_linear_gcn(csbm):
    model = _linear_gcn(csbm)
    w1 = model.convs[0].lin.weight.detach()
    w2 = model.convs[1].lin.weight.detach()
    a, x = _dense_adjacency(csbm), csbm.x
    # Z = A (A X W1^T) W2^T; G = dL/dZ (softmax - onehot on train rows / n_train)
    q = a @ x
    p = a @ (q @ w1.t())
    z = p @ w2.t()
    g = torch.zeros_like(z)
    train_idx = csbm.train_mask.nonzero().view(-1)
    g[train_idx] = (torch.softmax(z[train_idx], -1)
                    - F.one_hot(csbm.y[train_idx], z.size(1))) / train_idx.numel()
    d_w2 = g.t() @ p
    d_w1 = (a.t() @ (g @ w2)).t() @ q
    scores = snip_scores(model, lambda m: m(csbm.x, csbm.edge_index), _loss(csbm))
    assert torch.allclose(scores["convs.1.lin.weight"], (d_w2 * w2).abs(), atol=1e-6)
    assert torch.allclose(scores["convs.0.lin.weight"], (d_w1 * w1).abs(), atol=1e-6)
    assert all(p.grad is None for p in model.parameters())  # the model is left as it was


def test_grasp_scores_against_an_explicit_hessian(csbm):
    model = _linear_gcn(csbm)
    names = ["convs.0.lin.weight", "convs.1.lin.weight"]
    shapes = [model.get_parameter(n).shape for n in names]
    sizes = [math.prod(s) for s in shapes]
    flat0 = torch.cat([model.get_parameter(n).detach().reshape(-1) for n in names])
    a, t = _dense_adjacency(csbm), 200.0

    def loss(flat):
        w1, w2 = (f.view(s) for f, s in zip(flat.split(sizes), shapes))
        z = a @ ((a @ (csbm.x @ w1.t())) @ w2.t())
        return _loss(csbm, t)(z)

    g = torch.autograd.functional.jacobian(loss, flat0)
    hess = torch.autograd.functional.hessian(loss, flat0)
    expected = flat0 * (hess @ g)  # keep the largest w ⊙ Hg (remove the largest -w ⊙ Hg)
    scores = grasp_scores(model, lambda m: m(csbm.x, csbm.edge_index), _loss(csbm), t)
    got = torch.cat([scores[n].reshape(-1) for n in names])
    assert torch.allclose(got, expected, rtol=1e-3, atol=1e-9)


def test_synflow_conserves_the_flow_across_layers(csbm):
    torch.manual_seed(1)
    model = build_model("gcn", csbm.num_features, 8, csbm.num_classes, 4, dropout=0.0,
                        bias=False)
    ones = torch.ones_like(csbm.x, dtype=torch.float64)
    flow = synaptic_flow(model, lambda m: m(ones, csbm.edge_index))
    sums = [float(s.sum()) for s in flow.values()]
    assert len(sums) == 4 and all(x > 0 for x in sums)
    assert sums == pytest.approx([sums[0]] * 4, rel=1e-9)


def test_pruning_levels_reach_a_geometric_target_in_its_own_rounds():
    # 1 - 0.8^4 = 0.5904 and 1 - 0.8^9 = 0.865782272 (the UGS paper's Cora points)
    # are four and nine rounds of 20%, not one more round that prunes no weight
    assert pruning_levels(0.5904, 0.2) == pytest.approx([0.2, 0.36, 0.488, 0.5904])
    assert len(pruning_levels(0.865782272, 0.2)) == 9
    assert len(pruning_levels(0.9, 0.2, stops=[0.5904])) == 11


def test_pruning_levels_stop_exactly():
    assert pruning_levels(0.9, 0.2)[-1] == 0.9
    assert len(pruning_levels(0.9, 0.2)) == 11  # 1 - 0.8^10 < 0.9 < 1 - 0.8^11
    levels = pruning_levels(0.9, 0.2, stops=[0.5, 0.8])
    assert 0.5 in levels and 0.8 in levels and levels == sorted(levels)
    assert levels[:3] == pytest.approx([0.2, 0.36, 0.488])


@pytest.mark.parametrize("rewind_epoch", [0, 2])
def test_imp_rewinds_kept_weights_exactly(csbm, rewind_epoch):
    config = resolve_config(small(method="imp", sparsity=0.5, rewind_epoch=rewind_epoch))
    model, method = build(config, csbm)
    initial = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    phases = method.phases()
    method.start_phase(phases[0], model, csbm)
    snapshot = initial
    for epoch in range(4):
        opt.zero_grad()
        out = model(*method.inputs(csbm))
        F.cross_entropy(out[csbm.train_mask], csbm.y[csbm.train_mask]).backward()
        opt.step()
        method.after_step(epoch, model, opt)
        if epoch + 1 == rewind_epoch:
            snapshot = {n: p.detach().clone() for n, p in model.named_parameters()}
    trained = {n: p.detach().clone() for n, p in model.named_parameters()}
    method.start_phase(phases[1], model, csbm)
    group = get_mask_group(model)
    kept, cut = [], []
    for name, p in model.named_parameters():
        base = name.replace(".parametrizations.weight.original", ".weight")
        if base in group.members:
            mask = group.masks()[base]
            assert torch.equal(p[mask], snapshot[name][mask])
            assert (p[~mask] == 0).all()
            kept.append(trained[name][mask].abs())
            cut.append(trained[name][~mask].abs())
        else:
            assert torch.equal(p, snapshot[name])  # biases rewound too
    # the pruned entries are the smallest trained magnitudes (one global threshold)
    assert torch.cat(cut).max() <= torch.cat(kept).min()
    k, n = removed(model)
    assert k == math.floor(method.levels[0] * n + 0.5)


def test_ugs_prunes_edges_whose_messages_are_then_zero(csbm):
    config = resolve_config(small(method="ugs", sparsity=0.5, dropout=0.0))
    model, method = build(config, csbm)
    search, retrain = method.phases()[:2]
    method.start_phase(search, model, csbm)
    assert method.inputs(csbm)[2].requires_grad  # learnt edge weights during the search
    with torch.no_grad():  # a learnt edge mask: the first edges matter least
        method.edge_mask.copy_(torch.linspace(0.0, 1.0, method.edge_mask.numel()))
    method.start_phase(retrain, model, csbm)
    keep = method.edge_keep
    e = keep.numel()
    assert int((~keep).sum()) == math.floor(0.05 * e + 0.5) and not keep[: int((~keep).sum())].any()
    model.eval()
    x, edges = method.inputs(csbm)
    assert edges.size(1) == int(keep.sum())
    # the kept graph gives exactly the messages of the full graph with the pruned
    # edges weighted zero
    weighted = model(csbm.x, csbm.edge_index, edge_weight=keep.float())
    assert torch.allclose(model(x, edges), weighted, atol=1e-6)
    # and the pruned edges carried messages before
    assert not torch.allclose(model(csbm.x, csbm.edge_index), weighted, atol=1e-4)


def test_ugs_records_edge_and_weight_sparsity_per_round(csbm):
    record = train(small(method="ugs", sparsity=0.5, edge_sparsity=0.2, epochs=3), data=csbm)
    rounds = record["rounds"]
    assert [r["sparsity"] for r in rounds][-1] == 0.5
    assert rounds[-1]["edge_sparsity"] == pytest.approx(0.2, abs=1e-3)
    assert [r["edge_sparsity"] for r in rounds] == sorted(r["edge_sparsity"] for r in rounds)
    assert all(r["phase"] == "retrain" for r in rounds)


def test_ugs_needs_a_gcn_family_model():
    from gnnmask.errors import UserError

    with pytest.raises(UserError, match="takes no edge weights"):
        resolve_config(small(method="ugs", model="gat"))
    assert get_method_class("ugs").iterative and not get_method_class("snip").iterative


@pytest.mark.parametrize("method", ["imp", "ugs"])
def test_rewinding_returns_to_the_rescaled_initialisation(csbm, method):
    # --rescale-init rescales the weights after the method prepares the model;
    # every later round must rewind to those rescaled weights, not the raw ones.
    from gnnmask.train.tricks import Tricks

    config = resolve_config(small(method=method, sparsity=0.5, rescale_init=5))
    model, m = build(config, csbm)
    raw = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert Tricks(config).rescale(model, m, csbm)
    rescaled = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert any(not torch.equal(raw[n], rescaled[n]) for n in raw)
    phases = m.phases()
    m.start_phase(phases[0], model, csbm)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        out = model(*m.inputs(csbm))
        F.cross_entropy(out[csbm.train_mask], csbm.y[csbm.train_mask]).backward()
        opt.step()
    m.start_phase(phases[1], model, csbm)
    group = get_mask_group(model)
    params = dict(model.named_parameters())
    for name, value in rescaled.items():
        base = name.replace(".parametrizations.weight.original", ".weight")
        mask = group.masks()[base] if base in group.members else torch.ones_like(value).bool()
        assert torch.equal(params[name][mask], value[mask]), name


def test_random_pruning_of_the_graph_drops_exactly_its_share_of_edges(csbm):
    config = resolve_config(small(method="random", sparsity=0.5, edge_sparsity=0.3))
    model, method = build(config, csbm)
    _, kept = method.inputs(csbm)
    e = csbm.edge_index.size(1)
    assert kept.size(1) == e - round(0.3 * e)
    columns = {tuple(c) for c in csbm.edge_index.T.tolist()}
    assert {tuple(c) for c in kept.T.tolist()} <= columns  # a subset, nothing invented
    _, again = build(config, csbm)[1].inputs(csbm)
    assert torch.equal(kept, again)  # drawn from the seed
    _, other = build(config.replace(seed=1), csbm)[1].inputs(csbm)
    assert not torch.equal(kept, other)
    record = train(config, data=csbm)
    assert record["method"]["edge_sparsity"] == pytest.approx(round(0.3 * e) / e)
    plain = build(resolve_config(small(method="random", sparsity=0.5)), csbm)[1]
    assert plain.inputs(csbm)[1] is csbm.edge_index  # no edge sparsity: the graph as given
    with pytest.raises(UserError, match="--edge-sparsity prunes the whole graph"):
        resolve_config(small(method="random", edge_sparsity=0.3, batch_size=32))


def test_a_ugs_search_that_diverges_ends_at_its_best_state_and_the_run_goes_on(csbm):
    # lr 0.5 drives the edge masks negative within two epochs: degrees below zero
    # make the validation loss nan. The search's job, its best validation state,
    # is done by then; before the fix the whole run stopped there, with no round.
    record = train(small(method="ugs", sparsity=0.36, epochs=20, lr=0.5), data=csbm)
    assert record["status"] == "finished"
    assert [r["sparsity"] for r in record["rounds"]] == pytest.approx([0.2, 0.36])
    stopped = record["stopped_phases"]
    assert [s["phase"] for s in stopped] == ["search 0", "search 1"]
    assert all(s["restored"] and "nan" in s["reason"] for s in stopped)
