"""Score masks: parametrization, rules, gradients, inits, schedules, PyG models."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch_geometric.nn import (
    GATConv,
    GATv2Conv,
    GCN2Conv,
    GCNConv,
    GINConv,
    SAGEConv,
    TransformerConv,
)
from torch_geometric.nn.models import GAT, GCN, GIN, GraphSAGE

from gnnmask.errors import UserError
from gnnmask.masks import (
    RULES,
    SCHEDULES,
    _select,
    get_mask_group,
    is_masked,
    make_schedule,
    mask_model,
    score_parameters,
    unmask_model,
)
from gnnmask.masks.core import BETA, GAMMA, ZETA, ScoreMask
from gnnmask.masks.init import draw, fan_in, generator, init_scores, init_weights_

N_NODES, F_IN = 24, 6


@pytest.fixture
def graph():
    g = torch.Generator().manual_seed(123)
    x = torch.randn(N_NODES, F_IN, generator=g)
    edge_index = torch.randint(0, N_NODES, (2, 80), generator=g)
    return x, edge_index


class Stack(nn.Module):
    """A few GCNConv layers with a uniform ``forward(x, edge_index)``."""

    def __init__(self, dims=(F_IN, 16, 16, 3), bias=True):
        super().__init__()
        self.convs = nn.ModuleList(
            GCNConv(a, b, bias=bias) for a, b in zip(dims[:-1], dims[1:])
        )

    def forward(self, x, edge_index):
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            x = x.relu() if i < len(self.convs) - 1 else x
        return x


def originals(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if not n.endswith("scores")}


def train_steps(model, x, edge_index, steps=3, lr=0.05):
    opt = torch.optim.Adam(score_parameters(model), lr=lr)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model(x, edge_index).square().mean().backward()
        opt.step()


# -- frozen weights, trainable scores ------------------------------------------


@pytest.mark.parametrize("rule", RULES)
def test_only_scores_train_and_weights_stay_bit_identical(graph, rule):
    torch.manual_seed(0)
    model = mask_model(Stack(), sparsity=0.5, rule=rule, seed=1)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.endswith(".scores") for n in trainable)
    assert len(trainable) == 3 and is_masked(model)
    frozen = originals(model)
    scores = [s.detach().clone() for s in score_parameters(model)]
    train_steps(model, *graph)
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]) and not p.requires_grad, n
    assert all(not torch.equal(a, b) for a, b in zip(scores, score_parameters(model)))


def test_masked_weight_is_weight_times_mask():
    lin = nn.Linear(5, 4, bias=False)
    mask_model(lin, sparsity=0.5, scale="none")
    group = get_mask_group(lin)
    w = lin.parametrizations.weight.original
    assert torch.equal(lin.weight, w * group.masks()["weight"])
    group.scale = "keep"  # factor 1/sqrt(1 - 0.5)
    group.invalidate()
    assert torch.allclose(lin.weight, w * group.masks()["weight"] * math.sqrt(2.0))


# -- exact sparsity --------------------------------------------------------------


@pytest.mark.parametrize("s", [0.0, 0.1, 0.5, 0.73, 0.9, 0.99])
def test_global_rule_exact_overall_sparsity(s):
    model = mask_model(Stack(dims=(F_IN, 33, 17, 5)), sparsity=s, rule="global")
    group = get_mask_group(model)
    total = sum(m.numel() for m in group.masks().values())
    removed = sum(int((~m).sum()) for m in group.masks().values())
    assert removed == math.floor(s * total + 0.5)
    assert group.achieved_sparsity()["overall"] == pytest.approx(removed / total)
    # the kept entries are exactly those with the largest raw scores
    scores = torch.cat([p.detach().view(-1) for p in score_parameters(model)])
    keep = torch.cat([m.view(-1) for m in group.masks().values()])
    if 0 < removed < total:
        assert scores[~keep].max() <= scores[keep].min()


@pytest.mark.parametrize("s", [0.0, 0.25, 0.5, 0.9])
def test_topk_rule_exact_per_tensor_sparsity(s):
    model = mask_model(Stack(dims=(F_IN, 33, 17, 5)), sparsity=s, rule="topk")
    group = get_mask_group(model)
    for name, keep in group.masks().items():
        n = keep.numel()
        assert int(keep.sum()) == math.floor((1 - s) * n + 0.5), name
        s_abs = group.members[name].scores.detach().abs()
        if 0 < keep.sum() < n:
            assert s_abs[~keep].max() <= s_abs[keep].min()
        assert group.achieved_sparsity()["per_tensor"][name] == pytest.approx(
            1 - int(keep.sum()) / n
        )


def test_exact_sparsity_with_ties_and_large_inputs():
    # constant scores: every entry ties; removal goes in pooled order
    model = mask_model(Stack(), sparsity=0.6, rule="global", score_init="constant")
    keep = torch.cat([m.view(-1) for m in get_mask_group(model).masks().values()])
    k = math.floor(0.6 * keep.numel() + 0.5)
    assert int((~keep).sum()) == k and not keep[:k].any() and keep[k:].all()
    # > SMALL entries exercise the sampled band selection (and its tie path)
    big = nn.Sequential(*(nn.Linear(300, 300, bias=False) for _ in range(2)))
    for init in ("kaiming-uniform", "constant"):
        mask_model(big, sparsity=0.9, score_init=init)
        masks = get_mask_group(big).masks()
        assert sum(m.numel() for m in masks.values()) > _select.SMALL
        assert sum(int((~m).sum()) for m in masks.values()) == 162000
        unmask_model(big)


@pytest.mark.parametrize("small", [_select.SMALL, 64])
def test_keep_mask_random_against_stable_sort(monkeypatch, small):
    monkeypatch.setattr(_select, "SMALL", small)  # 64: the sampled band path
    monkeypatch.setattr(_select, "SAMPLE", 32)
    gen = torch.Generator().manual_seed(0)
    for trial in range(60):
        n = int(torch.randint(1, 1500, (1,), generator=gen))
        if trial % 2:
            flat = torch.randn(n, generator=gen)
        else:
            flat = torch.randint(0, 6, (n,), generator=gen).float()
        k = int(torch.randint(0, n + 1, (1,), generator=gen))
        # stable sort: ties in position order, the first k positions are dropped
        expected = torch.ones(n, dtype=torch.bool)
        expected[torch.sort(flat, stable=True).indices[:k]] = False
        assert torch.equal(_select.keep_mask(flat, k), expected)
        # the same selection over the tensor cut into parts, without the concatenation
        cuts = sorted(torch.randint(0, n + 1, (3,), generator=gen).tolist())
        parts = [p for p in torch.tensor_split(flat, cuts) if p.numel()]
        keep, t, _ = _select.pooled_keep_masks(parts, k)
        assert torch.equal(keep, expected)
        if t is not None:  # the threshold: the largest dropped value
            assert t == float(flat[~expected].max())
            # a hint (bounds tried first) never changes the result, right or wrong
            for hint in [(t, t), (t - 1.0, t + 1.0), (t + 1.0, t + 2.0), (t - 2.0, t - 1.0)]:
                assert torch.equal(_select.pooled_keep_masks(parts, k, hint=hint)[0], expected)


def test_sparse_nonzero_matches_nonzero():
    gen = torch.Generator().manual_seed(1)
    for n, p in [(8, 0.5), (4096, 0.01), (4096, 0.0), (4096, 1.0), (800, 0.3)]:
        mask = torch.rand(n, generator=gen) < p
        assert torch.equal(_select.sparse_nonzero(mask), mask.nonzero().view(-1))


# -- gradients -------------------------------------------------------------------


@pytest.mark.parametrize("scale", ["none", "keep"])
@pytest.mark.parametrize("rule", ["global", "topk"])
def test_straight_through_gradient_matches_hand_derivation(rule, scale):
    lin = nn.Linear(4, 3, bias=False)
    mask_model(lin, sparsity=0.5, rule=rule, scale=scale)
    group = get_mask_group(lin)
    w = lin.parametrizations.weight.original.detach()
    s = lin.parametrizations.weight[0].scores
    m = group.masks()["weight"].float()
    c = math.sqrt(2.0) if scale == "keep" else 1.0
    x = torch.randn(5, 4)
    g_out = torch.randn(5, 3)
    (lin(x) * g_out).sum().backward()
    # y = x (c w ⊙ m)^T  =>  dL/dW_eff = g_out^T x ;  dL/ds := dL/dm = c w ⊙ dL/dW_eff
    # (topk ranks |s|: dL/d|s| := dL/dm, then dL/ds = sign(s) dL/d|s|)
    dW = g_out.t() @ x
    sign = s.detach().sign() if rule == "topk" else 1.0
    assert torch.allclose(s.grad, sign * c * w * dW, atol=1e-6)
    assert torch.allclose(lin(x), x @ (c * w * m).t(), atol=1e-6)


def test_bernoulli_gradient_is_straight_through_the_sample():
    torch.manual_seed(0)
    lin = nn.Linear(4, 3, bias=False)
    mask_model(lin, rule="bernoulli", sparsity=0.0)
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
    lin = nn.Linear(50, 40, bias=False)
    mask_model(lin, rule="hard-concrete", sparsity=0.0)
    group = get_mask_group(lin)
    s = lin.parametrizations.weight[0].scores
    w = lin.parametrizations.weight.original.detach()
    z = lin.weight / w
    assert z.min() >= 0 and z.max() <= 1 and (z == 0).any() and (z == 1).any()
    penalty = group.l0_penalty()
    shift = BETA * math.log(-GAMMA / ZETA)
    assert torch.allclose(penalty, torch.sigmoid(s - shift).mean())
    penalty.backward()
    assert s.grad is not None and (s.grad > 0).all()
    lin.eval()
    assert torch.equal(lin.weight, torch.where(s > 0, w, 0.0))


# -- the global threshold is computed once per score update ------------------------


def test_global_threshold_computed_once_per_forward(graph):
    model = mask_model(Stack(), sparsity=0.7, rule="global")
    group = get_mask_group(model)
    opt = torch.optim.Adam(score_parameters(model), lr=0.05)
    before = group.recomputations
    model(*graph).sum().backward()
    assert group.recomputations == before + 1  # three masked tensors, one threshold
    model(*graph)
    assert group.recomputations == before + 1  # nothing changed: cached
    opt.step()
    model(*graph)
    assert group.recomputations == before + 2  # scores changed: recomputed once
    group.sparsity = 0.5
    masks = group.masks()
    assert group.recomputations == before + 3
    # a sub-module called alone uses the same pooled threshold
    conv = model.convs[1]
    w = conv.lin.parametrizations.weight.original
    c = 1 / math.sqrt(0.5)
    assert torch.allclose(conv.lin.weight, torch.where(masks["convs.1.lin.weight"], w, 0.0) * c)


class TwiceRead(nn.Module):
    """Reads its masked weight twice per forward pass (weight tying)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(F_IN, F_IN, bias=False)

    def forward(self, x, edge_index=None):
        return x @ self.lin.weight.t() + x @ self.lin.weight


@pytest.mark.parametrize("rule", ["global", "topk"])
def test_forward_pass_prepares_each_weight_once_with_identical_results(graph, rule):
    from gnnmask.masks.api import _BeginPass

    runs = []
    for prepared in (True, False):
        model = mask_model(Stack(), sparsity=0.6, rule=rule, seed=3)
        if not prepared:  # no pre-hook: every weight computed on access
            model._forward_pre_hooks.clear()
        group = get_mask_group(model)
        computed = []
        for member in group.members.values():
            def effective(weight, member=member, compute=member.effective,
                          computed=computed, group=group):
                computed.append((member.name, group._depth))
                return compute(weight)
            member.effective = effective
        model(*graph).square().sum().backward()
        assert group._pass is None and group._depth == 0
        runs.append((model(*graph), [s.grad for s in score_parameters(model)]))
        # prepared: each weight computed once per pass, by the pre-hook (depth 1
        # while the pass runs); otherwise on access, outside any prepared pass
        assert computed == [(name, int(prepared)) for name in group.members] * 2
        if prepared:
            assert sum(isinstance(h, _BeginPass) for h in model._forward_pre_hooks.values()) == 1
    (out_a, grads_a), (out_b, grads_b) = runs
    assert torch.equal(out_a, out_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))


def test_prepared_weight_read_twice_shares_its_gradient_and_errors_end_the_pass(graph):
    x = graph[0]
    model = mask_model(TwiceRead(), sparsity=0.5, seed=0)
    group = get_mask_group(model)
    model(x).sum().backward()
    with_pass = model.lin.parametrizations.weight[0].scores.grad.clone()
    model.zero_grad()
    model._forward_pre_hooks.clear()
    model(x).sum().backward()
    # one node for both reads: (g1 + g2) * w instead of g1 * w + g2 * w
    assert torch.allclose(model.lin.parametrizations.weight[0].scores.grad, with_pass)
    bad = mask_model(TwiceRead(), sparsity=0.5)
    with pytest.raises(RuntimeError):
        bad(torch.randn(3, F_IN + 1))
    assert get_mask_group(bad)._pass is None and get_mask_group(bad)._depth == 0
    assert group._pass is None


@pytest.mark.parametrize("impl", ["foreach", "fused"])
def test_optimizer_step_invalidates_cache(graph, impl):
    # fused optimisers update in place without bumping version counters
    model = mask_model(Stack(), sparsity=0.7)
    group = get_mask_group(model)
    opt = torch.optim.Adam(score_parameters(model), lr=0.5, **{impl: True})
    model(*graph).sum().backward()
    n, old = group.recomputations, {k: v.clone() for k, v in group.masks().items()}
    opt.step()
    new = group.masks()
    assert group.recomputations == n + 1
    assert any(not torch.equal(old[k], new[k]) for k in old)


# -- every PyG model -------------------------------------------------------------


class Wrap(nn.Module):
    def __init__(self, conv, call=None):
        super().__init__()
        self.conv, self.call = conv, call

    def forward(self, x, edge_index):
        return self.call(self, x, edge_index) if self.call else self.conv(x, edge_index)


def _gcn2():
    m = nn.Module()
    m.lin = nn.Linear(F_IN, 8)
    m.convs = nn.ModuleList(GCN2Conv(8, alpha=0.1, theta=0.5, layer=i + 1) for i in range(2))

    def call(self, x, ei):
        h = x0 = self.conv.lin(x)
        for conv in self.conv.convs:
            h = conv(h, x0, ei).relu()
        return h

    return Wrap(m, call)


def _deepgcn():
    from torch_geometric.nn import DeepGCNLayer

    m = nn.Module()
    m.lin = nn.Linear(F_IN, 8)
    m.layers = nn.ModuleList(
        DeepGCNLayer(GCNConv(8, 8), nn.LayerNorm(8), nn.ReLU(), block="res+") for _ in range(3)
    )

    def call(self, x, ei):
        h = self.conv.lin(x)
        for layer in self.conv.layers:
            h = layer(h, ei)
        return h

    return Wrap(m, call)


def _lazy():
    m = Wrap(GCNConv(-1, 8))
    m(torch.randn(3, F_IN), torch.tensor([[0, 1], [1, 2]]))  # the dry forward
    return m


PYG_MODELS = {
    "GCNConv": lambda: Wrap(GCNConv(F_IN, 8)),
    "SAGEConv": lambda: Wrap(SAGEConv(F_IN, 8)),
    "GINConv": lambda: Wrap(
        GINConv(nn.Sequential(nn.Linear(F_IN, 8), nn.ReLU(), nn.Linear(8, 8)))
    ),
    "GATConv": lambda: Wrap(GATConv(F_IN, 4, heads=2)),
    "GATv2Conv": lambda: Wrap(GATv2Conv(F_IN, 4, heads=2)),
    "TransformerConv": lambda: Wrap(TransformerConv(F_IN, 4, heads=2, beta=True)),
    "GCN2Conv": _gcn2,
    "DeepGCNLayer": _deepgcn,
    "lazy GCNConv": _lazy,
    "models.GCN": lambda: GCN(F_IN, 8, num_layers=3, out_channels=3),
    "models.GAT": lambda: GAT(F_IN, 8, num_layers=2, out_channels=3, heads=2),
    "models.GraphSAGE": lambda: GraphSAGE(F_IN, 8, num_layers=2, out_channels=3),
    "models.GIN": lambda: GIN(F_IN, 8, num_layers=2, out_channels=3),
}
EXPECTED_TARGETS = {
    "SAGEConv": {"conv.lin_l.weight", "conv.lin_r.weight"},
    "GINConv": {"conv.nn.0.weight", "conv.nn.2.weight"},
    "GATConv": {"conv.lin.weight"},
    "GATv2Conv": {"conv.lin_l.weight", "conv.lin_r.weight"},
    "GCN2Conv": {"conv.lin.weight", "conv.convs.0.weight1", "conv.convs.1.weight1"},
}


@pytest.mark.parametrize("name", sorted(PYG_MODELS))
def test_pyg_models_mask_train_and_state_dict_round_trip(graph, name):
    torch.manual_seed(0)
    model = mask_model(PYG_MODELS[name](), sparsity=0.5, seed=3)
    group = get_mask_group(model)
    if name in EXPECTED_TARGETS:
        assert set(group.members) == EXPECTED_TARGETS[name]
    assert all(m.scores.shape == group.members[n].scores.shape for n, m in group.members.items())
    model.train()
    model(*graph).square().mean().backward()
    for n, p in model.named_parameters():
        if n.endswith(".scores"):
            assert p.grad is not None and p.grad.abs().sum() > 0, n
        else:
            assert p.grad is None and not p.requires_grad, n
    train_steps(model, *graph, steps=2)
    torch.manual_seed(0)
    fresh = mask_model(PYG_MODELS[name](), sparsity=0.5, seed=99)
    fresh.load_state_dict(model.state_dict())
    model.eval(), fresh.eval()
    assert torch.equal(model(*graph), fresh(*graph))


def test_attention_vectors_only_on_request(graph):
    model = mask_model(Wrap(GATConv(F_IN, 4, heads=2)), include=["*"])
    assert set(get_mask_group(model).members) == {
        "conv.att_src", "conv.att_dst", "conv.lin.weight",
    }
    model(*graph).sum().backward()
    only = mask_model(Wrap(GATConv(F_IN, 4, heads=2)), include=["*lin*"], exclude=["*src*"])
    assert set(get_mask_group(only).members) == {"conv.lin.weight"}
    with_bias = mask_model(Stack(), mask_bias=True, exclude=["convs.0.*"])
    assert set(get_mask_group(with_bias).members) == {
        "convs.1.bias", "convs.1.lin.weight", "convs.2.bias", "convs.2.lin.weight",
    }


def test_lazy_layer_without_dry_forward_is_a_user_error():
    with pytest.raises(UserError, match=r"'conv.lin.weight' is not initialised"):
        mask_model(Wrap(GCNConv(-1, 8)))


# -- unmask ------------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES)
def test_unmask_gives_plain_model_with_identical_outputs(graph, rule):
    model = mask_model(Stack(), sparsity=0.6, rule=rule)
    train_steps(model, *graph, steps=2)
    model.eval()
    out = model(*graph)
    removed = sum(int((~m).sum()) for m in get_mask_group(model).masks().values())
    unmask_model(model)
    assert not is_masked(model)
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    assert not any(isinstance(m, ScoreMask) for m in model.modules())
    assert not any("scores" in k or "parametrizations" in k for k in model.state_dict())
    assert type(model.convs[0].lin).__name__ == "Linear"
    assert not model._forward_pre_hooks and not model._forward_hooks  # pass hooks gone
    assert torch.equal(model(*graph), out)
    zeros = sum(int((c.lin.weight == 0).sum()) for c in model.convs)
    assert zeros == removed
    assert all(p.requires_grad for p in model.parameters())  # flags restored
    Stack().load_state_dict(model.state_dict())  # an ordinary state_dict


def test_unmask_deep_copy_leaves_original_intact(graph):
    import copy

    model = mask_model(Stack(), sparsity=0.5)
    twin = copy.deepcopy(model)
    unmask_model(twin)
    model.eval(), twin.eval()
    assert torch.equal(model(*graph), twin(*graph))
    assert is_masked(model) and "convs.0.lin.parametrizations.weight.original" in model.state_dict()


def test_state_dict_has_no_masked_product_keys():
    keys = set(mask_model(Stack()).state_dict())
    assert "convs.0.lin.weight" not in keys
    assert {"convs.0.lin.parametrizations.weight.original",
            "convs.0.lin.parametrizations.weight.0.scores"} <= keys


# -- inits ---------------------------------------------------------------------------


def test_weight_init_distributions():
    gen = generator(0)
    shape, n = (200, 300), 300
    w = draw("kaiming-uniform", shape, gen)
    bound = math.sqrt(6 / n)
    assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound
    w = draw("kaiming-normal", shape, gen)
    assert w.std().item() == pytest.approx(math.sqrt(2 / n), rel=0.02)
    w = draw("signed-constant", shape, gen)
    assert set(w.abs().unique().tolist()) == pytest.approx([math.sqrt(2 / n)])
    assert 0.45 < (w > 0).float().mean() < 0.55
    w = draw("scaled-signed-constant", shape, gen, sparsity=0.75)
    assert w.abs().unique().tolist() == pytest.approx([math.sqrt(2 / (n * 0.25))])
    assert fan_in((4, 5, 3)) == 15 and fan_in((7,)) == 7
    s = draw("uniform", shape, gen)
    assert s.min() >= 0 and s.max() < 1
    assert torch.equal(draw("constant", (3,), gen), torch.ones(3))


def test_inits_deterministic_under_seed_and_independent_of_global_rng():
    def weights(seed, score_init="kaiming-uniform"):
        torch.manual_seed(seed + 1000)  # the global RNG must not matter
        model = mask_model(Stack(), seed=seed, score_init=score_init)
        return [p.detach().clone() for n, p in model.named_parameters() if "original" in n]

    a, b = weights(5), weights(5)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert all(not torch.equal(x, y) for x, y in zip(a, weights(6)))
    assert all(torch.equal(x, y) for x, y in zip(a, weights(5, score_init="uniform")))
    t = [torch.empty(3, 4), torch.empty(5, 4)]
    init_weights_(t, "kaiming-normal", 1)
    assert not torch.equal(init_scores(t, "kaiming-normal", 1)[0], t[0])


# -- schedules -------------------------------------------------------------------------


def test_schedules():
    lin = make_schedule("linear", 0.8, end=0.5)
    assert [lin(e, 100) for e in (0, 25, 50, 99)] == pytest.approx([0.0, 0.4, 0.8, 0.8])
    assert not lin.done(49, 100) and lin.done(50, 100)
    cub = make_schedule("cubic", 0.8, end=0.5)
    assert [cub(e, 100) for e in (0, 25, 50, 80)] == pytest.approx(
        [0.0, 0.8 * (1 - 0.5**3), 0.8, 0.8]
    )
    const = make_schedule("constant", 0.3)
    assert const(0, 10) == const(9, 10) == 0.3 and const.done(0, 10)
    assert repr(lin) == "LinearSchedule(target=0.8, end=0.5)"
    assert set(SCHEDULES) == {"constant", "linear", "cubic"}


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, "x", None, float("nan")])
def test_sparsity_out_of_range(bad):
    with pytest.raises(UserError, match="out of range; allowed: 0 <= sparsity < 1"):
        mask_model(Stack(), sparsity=bad)
    model = mask_model(Stack())
    with pytest.raises(UserError, match="sparsity"):
        get_mask_group(model).sparsity = bad
    with pytest.raises(UserError, match="sparsity"):
        make_schedule("linear", bad)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rule": "magnitude"}, "unknown mask rule 'magnitude'; allowed: global, topk"),
        ({"weight_init": "xavier"}, "unknown weight init 'xavier'"),
        ({"score_init": "normal"}, "unknown score init 'normal'"),
        ({"scale": "half"}, "unknown scale 'half'"),
        ({"include": ["nothing*"]}, "include pattern 'nothing\\*' matches no"),
        ({"exclude": ["*"]}, "no parameters to mask"),
    ],
)
def test_bad_arguments_are_user_errors(kwargs, match):
    with pytest.raises(UserError, match=match):
        mask_model(Stack(), **kwargs)


def test_other_user_errors():
    with pytest.raises(UserError, match="unknown schedule 'step'"):
        make_schedule("step", 0.5)
    with pytest.raises(UserError, match="schedule end"):
        make_schedule("linear", 0.5, end=0.0)
    model = mask_model(Stack())
    with pytest.raises(UserError, match="already masked"):
        mask_model(model)
    with pytest.raises(UserError, match="not masked"):
        get_mask_group(Stack())


# -- methods -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ugt", "edge-popup"])
def test_masked_methods_keep_weights_and_follow_schedule(graph, method):
    from gnnmask.methods import get_method_class
    from gnnmask.train.config import RunConfig

    cls = get_method_class(method)
    config = RunConfig(method=method, epochs=6, seed=2)
    for key, value in cls.defaults.items():
        if getattr(config, key) is None:
            setattr(config, key, value)
    m = cls(config)
    torch.manual_seed(config.seed)
    model = m.prepare(Stack(bias=False), None)
    frozen = originals(model)
    params = list(m.parameters(model))
    assert params == score_parameters(model)
    opt = torch.optim.Adam(params, lr=0.05)
    seen = []
    for epoch in range(config.epochs):
        m.on_epoch_start(epoch, model)
        opt.zero_grad()
        loss = model(*graph).square().mean()
        assert m.penalty(model) is None
        loss.backward()
        opt.step()
        seen.append(m.epoch_info(model))
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n])
    target = cls.defaults["sparsity"]
    if method == "ugt":
        assert [r["sparsity"] for r in seen] == pytest.approx([0, 0.3, 0.6, 0.9, 0.9, 0.9])
        assert not m.selectable(2) and m.selectable(3)
    assert seen[-1]["achieved_sparsity"] == pytest.approx(target, abs=0.01)
    out = m.export(model)
    assert out["mask_rule"] == cls.defaults["mask_rule"]
    assert set(out["per_layer_sparsity"]) == set(get_mask_group(model).members)


def test_hard_concrete_penalty_from_method():
    from gnnmask.methods import get_method_class
    from gnnmask.train.config import RunConfig

    config = RunConfig(method="ugt", sparsity=0.5, mask_rule="hard-concrete", schedule="constant",
                       weight_init="kaiming-uniform", score_init="kaiming-uniform",
                       schedule_end=0.5, extra={"l0_lambda": 2.0})
    m = get_method_class("ugt")(config)
    model = m.prepare(Stack(), None)
    assert torch.allclose(m.penalty(model), 2.0 * get_mask_group(model).l0_penalty())


def test_cache_survives_inference_mode_dtype_moves_and_fix(graph):
    model = mask_model(Stack(), sparsity=0.5)
    group = get_mask_group(model)
    with torch.inference_mode():
        model(*graph)
    model(*graph).sum().backward()  # a mask cached under inference mode is reusable
    assert all(p.grad is not None for p in score_parameters(model))
    masks = {k: v.clone() for k, v in group.masks().items()}
    model.double()
    x = graph[0].double()
    assert model(x, graph[1]).dtype == torch.float64
    assert all(torch.equal(masks[k], v) for k, v in group.masks().items())
    group.fix()
    with torch.no_grad():
        for s in score_parameters(model):
            s.neg_()  # scores no longer matter while fixed
    assert all(torch.equal(masks[k], v) for k, v in group.masks().items())
    group.unfix()
    assert all(not torch.equal(masks[k], v) for k, v in group.masks().items())


def test_global_masks_stay_exact_across_optimizer_steps():
    # > SMALL scores: later steps try the band around the last threshold first
    big = nn.Sequential(*(nn.Linear(300, 300, bias=False) for _ in range(2)))
    mask_model(big, sparsity=0.3, rule="global", seed=0)
    group = get_mask_group(big)
    opt = torch.optim.Adam(score_parameters(big), lr=0.01)
    x = torch.randn(16, 300, generator=torch.Generator().manual_seed(0))
    for _ in range(4):
        scores = torch.cat([m.scores.detach().view(-1) for m in group.members.values()])
        expected = torch.ones_like(scores, dtype=torch.bool)
        expected[torch.sort(scores, stable=True).indices[:54000]] = False
        keep = torch.cat([m.view(-1) for m in group.masks().values()])
        assert torch.equal(keep, expected)
        opt.zero_grad()
        big(x).pow(2).sum().backward()
        opt.step()
    assert group._threshold is not None and group._threshold[3] is not None


def test_masked_weights_are_patched_in_place_and_stay_exact():
    from gnnmask.masks.core import apply_mask

    big = nn.Sequential(*(nn.Linear(300, 300, bias=False) for _ in range(2)))
    mask_model(big, sparsity=0.3, rule="global", seed=0)
    group = get_mask_group(big)
    opt = torch.optim.Adam(score_parameters(big), lr=0.01, fused=True)
    x = torch.randn(16, 300, generator=torch.Generator().manual_seed(0))
    buffers, flips = [], 0
    for step in range(6):
        group.sparsity = 0.3 if step >= 3 else 0.1 * step  # a ramp, then constant
        out = big(x)
        masks = group.masks()
        for name in group.members:
            module, attr = group.targets[name]
            frozen = module.parametrizations[attr].original
            assert torch.equal(getattr(module, attr), apply_mask(frozen, masks[name],
                                                                 group.factor))
        buffers.append([m._masked[2].data_ptr() for m in group.members.values()])
        flips += sum(f.numel() for f in group.flips.values())
        opt.zero_grad()
        out.pow(2).sum().backward()
        opt.step()
    assert flips > 0
    assert buffers[4] == buffers[5]  # constant sparsity: patched, not rebuilt
    # a graph kept across a score update refuses a second backward pass
    out = big(x)
    out.sum().backward(retain_graph=True)
    opt.step()
    big(x)
    with pytest.raises(RuntimeError, match="modified inplace"):
        out.sum().backward()
