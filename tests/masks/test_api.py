"""Attaching masks to any PyG model, and taking them off (gnnmask.masks.api)."""

from __future__ import annotations

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
    MaskParametrization,
    get_mask_group,
    is_masked,
    mask_model,
    refresh_on_step,
    score_parameters,
    sparsify,
    unmask_model,
)

F_IN = 6
SCORE_RULES = [name for name, rule in RULES.items() if not rule.fixed]


def originals(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if not n.endswith("scores")}


def train_steps(model, x, edge_index, steps=3, lr=0.05):
    opt = torch.optim.Adam(score_parameters(model), lr=lr)
    refresh_on_step(opt, model)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model(x, edge_index).square().mean().backward()
        opt.step()


@pytest.mark.parametrize("rule", SCORE_RULES)
def test_only_scores_train_and_weights_stay_bit_identical(graph, stack, rule):
    model = mask_model(stack(), sparsity=0.5, rule=rule, seed=1)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert len(trainable) == 3 and all(n.endswith(".scores") for n in trainable)
    assert is_masked(model)
    frozen = originals(model)
    scores = [s.detach().clone() for s in score_parameters(model)]
    masks = {k: v.clone() for k, v in get_mask_group(model).masks().items()}
    train_steps(model, *graph)
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]) and not p.requires_grad, n
    assert all(not torch.equal(a, b) for a, b in zip(scores, score_parameters(model)))
    if rule in ("global", "topk"):  # the masks followed the scores
        assert any(not torch.equal(masks[k], v) for k, v in get_mask_group(model).masks().items())


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
    for n, m in group.members.items():  # one score per entry of the tensor it masks
        path, attr = n.rpartition(".")[::2]
        original = model.get_submodule(path).parametrizations[attr].original
        assert m.scores.shape == original.shape
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


def test_attention_vectors_only_on_request(graph, stack):
    model = mask_model(Wrap(GATConv(F_IN, 4, heads=2)), include=["*"])
    assert set(get_mask_group(model).members) == {
        "conv.att_src", "conv.att_dst", "conv.lin.weight",
    }
    model(*graph).sum().backward()
    only = mask_model(Wrap(GATConv(F_IN, 4, heads=2)), include=["*lin*"], exclude=["*src*"])
    assert set(get_mask_group(only).members) == {"conv.lin.weight"}
    with_bias = mask_model(stack(), mask_bias=True, exclude=["convs.0.*"])
    assert set(get_mask_group(with_bias).members) == {
        "convs.1.bias", "convs.1.lin.weight", "convs.2.bias", "convs.2.lin.weight",
    }


def test_lazy_layer_without_dry_forward_is_a_user_error():
    with pytest.raises(UserError, match=r"'conv.lin.weight' is not initialised"):
        mask_model(Wrap(GCNConv(-1, 8)))


# -- unmask ------------------------------------------------------------------------


@pytest.mark.parametrize("rule", SCORE_RULES)
def test_unmask_gives_plain_model_with_identical_outputs(graph, stack, rule):
    model = mask_model(stack(), sparsity=0.6, rule=rule)
    train_steps(model, *graph, steps=2)
    model.eval()
    out = model(*graph)
    removed = sum(int((~m).sum()) for m in get_mask_group(model).masks().values())
    unmask_model(model)
    assert not is_masked(model)
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    assert not any(isinstance(m, MaskParametrization) for m in model.modules())
    assert not any("scores" in k or "parametrizations" in k for k in model.state_dict())
    assert type(model.convs[0].lin).__name__ == "Linear"
    assert torch.equal(model(*graph), out)
    zeros = sum(int((c.lin.weight == 0).sum()) for c in model.convs)
    assert zeros == removed
    assert all(p.requires_grad for p in model.parameters())  # flags restored
    stack().load_state_dict(model.state_dict())  # an ordinary state_dict


def test_unmask_deep_copy_leaves_original_intact(graph, stack):
    import copy

    model = mask_model(stack(), sparsity=0.5)
    twin = copy.deepcopy(model)
    unmask_model(twin)
    model.eval(), twin.eval()
    assert torch.equal(model(*graph), twin(*graph))
    assert is_masked(model) and "convs.0.lin.parametrizations.weight.original" in model.state_dict()


def test_state_dict_has_no_masked_product_keys(stack):
    keys = set(mask_model(stack()).state_dict())
    assert "convs.0.lin.weight" not in keys
    assert {"convs.0.lin.parametrizations.weight.original",
            "convs.0.lin.parametrizations.weight.0.scores"} <= keys




@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, "x", None, float("nan")])
def test_sparsity_out_of_range(stack, bad):
    with pytest.raises(UserError, match="out of range; allowed: 0 <= sparsity < 1"):
        mask_model(stack(), sparsity=bad)
    if bad is not None:  # refresh(None) keeps the current sparsity
        with pytest.raises(UserError, match="out of range; allowed: 0 <= sparsity < 1"):
            get_mask_group(mask_model(stack())).refresh(bad)
    with pytest.raises(UserError, match="out of range; allowed: 0 <= sparsity < 1"):
        sparsify(stack(), sparsity=bad)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rule": "magnitude"}, "unknown mask rule 'magnitude'; allowed: global, erk, topk"),
        ({"weight_init": "xavier"}, "unknown weight init 'xavier'"),
        ({"score_init": "normal"}, "unknown score init 'normal'"),
        ({"scale": "half"}, "unknown scale 'half'"),
        ({"include": ["nothing*"]}, "include pattern 'nothing\\*' matches no"),
        ({"exclude": ["*"]}, "no parameters to mask"),
        ({"weight_gain": 0}, "weight_gain 0 is invalid; allowed: a finite number > 0"),
        ({"weight_gain": float("inf")}, "weight_gain inf is invalid"),
        ({"weight_gain": True}, "weight_gain True is invalid"),
        ({"include": 3}, "include 3 is invalid; allowed: a list of glob patterns"),
        ({"scale_exclude": ["nothing*"]},
         "scale_exclude pattern 'nothing\\*' matches no masked parameter; allowed: globs over "
         "convs.0.lin.weight, "),
        ({"exclude": ["convs.0.*"], "scale_exclude": ["convs.0.*"]},
         "scale_exclude pattern 'convs.0.\\*' matches no masked parameter"),
        ({"scale_exclude": [1]}, "scale_exclude \\[1\\] is invalid"),
        ({"scale": "none", "scale_exclude": ["*"]},
         "scale_exclude \\['\\*'\\] has no effect: scale 'none' resolves to 'none'; "
         "allowed: scale keep, layer or unit"),
        ({"rule": "bernoulli", "scale_exclude": ["*"]}, "no effect: scale 'auto' resolves to"),
    ],
)
def test_bad_arguments_are_user_errors(stack, kwargs, match):
    model = stack()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UserError, match=match):
        mask_model(model, **kwargs)
    assert not is_masked(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_weight_gain_multiplies_the_drawn_weights_and_a_bias_free_relu_stack_exactly(
        graph, stack):
    plain = mask_model(stack(bias=False), sparsity=0.5, seed=3)
    gained = mask_model(stack(bias=False), sparsity=0.5, seed=3, weight_gain=2.0)
    w1, w2 = originals(plain), originals(gained)
    assert w1.keys() == w2.keys() and all(torch.equal(2 * w1[k], w2[k]) for k in w1)
    assert all(torch.equal(a, b) for a, b in zip(score_parameters(plain),
                                                 score_parameters(gained)))
    assert get_mask_group(gained).masks().keys() == get_mask_group(plain).masks().keys()
    assert all(torch.equal(m, get_mask_group(plain).masks()[k])
               for k, m in get_mask_group(gained).masks().items())
    # three masked layers, ReLU, no bias: the logits times 2^3
    assert torch.allclose(gained(*graph), 8 * plain(*graph), rtol=1e-6, atol=0)
    assert get_mask_group(gained).recipe["weight_gain"] == 2.0
    assert "weight_gain" not in get_mask_group(plain).recipe  # old tickets read the same


@pytest.mark.parametrize("scale", ["keep", "layer", "unit"])
def test_scale_exclude_keeps_the_binary_mask_on_the_named_tensors_only(graph, scale):
    torch.manual_seed(0)
    model = GAT(F_IN, 8, num_layers=2, out_channels=3)
    att = ["*att_src", "*att_dst"]
    masked = mask_model(model, sparsity=0.75, include=["*"], scale=scale, scale_exclude=att,
                        seed=1)
    group = get_mask_group(masked)
    unscaled = {n for n in group.members if n.endswith(("att_src", "att_dst"))}
    assert group.unscaled == unscaled and len(unscaled) == 4
    for sparsity in (0.75, 0.5):  # every refresh, at any sparsity
        group.refresh(sparsity)
        for name, m in group.members.items():
            if name in unscaled:
                assert torch.all(m.scale == 1)
                module, attr = group.targets[name]
                w = module.parametrizations[attr].original
                assert torch.equal(getattr(module, attr), w * m.mask)
            else:
                assert torch.any(m.scale > 1)
    assert group.recipe["scale_exclude"] == att
    plain = mask_model(GAT(F_IN, 8, num_layers=2, out_channels=3), include=["*"], scale=scale)
    assert "scale_exclude" not in get_mask_group(plain).recipe  # old tickets read the same
    assert get_mask_group(plain).unscaled == frozenset()


def test_masking_twice_or_a_plain_model_is_a_user_error(stack):
    model = mask_model(stack())
    weights = originals(model)
    with pytest.raises(UserError, match="already masked"):
        mask_model(model)
    with pytest.raises(UserError, match="already masked"):
        sparsify(model)
    assert all(torch.equal(weights[k], v) for k, v in originals(model).items())
    with pytest.raises(UserError, match="not masked"):
        get_mask_group(stack())


@pytest.mark.parametrize("call, name", [
    (lambda: mask_model("hello"), "mask_model(): argument 'model' is str 'hello'"),
    (lambda: get_mask_group(3), "get_mask_group(): argument 'model' is int 3"),
])
def test_public_functions_name_a_wrong_argument(call, name):
    with pytest.raises(TypeError) as info:
        call()
    assert str(info.value).startswith(name)


def test_a_training_forward_on_stale_masks_warns_once_naming_the_fix():
    import warnings

    torch.manual_seed(0)
    model = mask_model(nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 2)), sparsity=0.5, seed=0)
    opt = torch.optim.SGD(score_parameters(model), lr=1.0)
    x = torch.randn(8, 6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):  # a user's own loop that never refreshes
            model(x).square().sum().backward()
            opt.step()
            opt.zero_grad()
    stale = [w for w in caught if "changed since its mask was computed" in str(w.message)]
    assert len(stale) == 1 and "refresh_on_step(optimizer, model)" in str(stale[0].message)
    fresh = mask_model(nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 2)), sparsity=0.5, seed=0)
    opt = torch.optim.SGD(score_parameters(fresh), lr=1.0)
    refresh_on_step(opt, fresh)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            fresh(x).square().sum().backward()
            opt.step()
            opt.zero_grad()
    assert not [w for w in caught if "changed since" in str(w.message)]
    fixed = mask_model(nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 2)), sparsity=0.5, seed=0)
    get_mask_group(fixed).fix()  # masks meant to stay: changing scores are not stale
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            with torch.no_grad():
                for scores in score_parameters(fixed):
                    scores.add_(1.0)
            fixed(x)
    assert not [w for w in caught if "changed since" in str(w.message)]


def test_masking_attaches_nothing_to_the_model_itself():
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))
    before = dict(vars(model))
    mask_model(model, sparsity=0.5, seed=0)
    group = get_mask_group(model)
    assert vars(model).keys() == before.keys()  # the group lives in the parametrizations
    assert get_mask_group(model[0]) is group and is_masked(model) and not is_masked(model[1])
    unmask_model(model)
    assert vars(model).keys() == before.keys() and not is_masked(model)
