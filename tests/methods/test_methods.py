"""Training methods as strategies: mask-only methods and their configuration checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric.nn import GCNConv

from gnnmask.errors import UserError
from gnnmask.masks import get_mask_group, score_parameters
from gnnmask.methods import METHODS, get_method_class
from gnnmask.train.config import RunConfig, resolve_config

F_IN = 6


class Stack(nn.Module):
    def __init__(self, dims=(F_IN, 16, 16, 3)):
        super().__init__()
        self.convs = nn.ModuleList(GCNConv(a, b, bias=False) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x, edge_index):
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            x = x.relu() if i < len(self.convs) - 1 else x
        return x


@pytest.fixture
def graph():
    g = torch.Generator().manual_seed(1)
    return torch.randn(24, F_IN, generator=g), torch.randint(0, 24, (2, 80), generator=g)


@pytest.mark.parametrize("method", ["ugt", "edge-popup"])
def test_masked_methods_keep_weights_follow_the_schedule_and_refresh(graph, method):
    config = resolve_config(RunConfig(method=method, epochs=6, seed=2))
    m = get_method_class(method)(config)
    torch.manual_seed(config.seed)
    model = m.prepare(Stack(), None)
    frozen = {n: p.clone() for n, p in model.named_parameters() if "original" in n}
    params = list(m.parameters(model))
    assert params == score_parameters(model)
    opt = torch.optim.Adam(params, lr=0.05)
    seen, masks = [], []
    for epoch in range(config.epochs):
        m.on_epoch_start(epoch, model)
        opt.zero_grad()
        model(*graph).square().mean().backward()
        opt.step()
        m.after_step(epoch, model, opt)
        seen.append(m.epoch_info(model))
        masks.append({k: v.clone() for k, v in get_mask_group(model).masks().items()})
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    target = config.sparsity
    if method == "ugt":
        assert [r["sparsity"] for r in seen] == pytest.approx([0, 0.3, 0.6, 0.9, 0.9, 0.9])
        assert not m.selectable(2) and m.selectable(3)
    # after each step the masks follow the new scores, at the target once reached
    assert any(not torch.equal(masks[-2][k], masks[-1][k]) for k in masks[-1])
    assert seen[-1]["achieved_sparsity"] == pytest.approx(target, abs=0.01)
    out = m.export(model)
    assert out["mask_rule"] == config.mask_rule
    assert set(out["per_layer_sparsity"]) == set(get_mask_group(model).members)


def test_hard_concrete_penalty_is_scaled_by_l0_lambda():
    config = resolve_config(RunConfig(method="ugt", sparsity=0.5, mask_rule="hard-concrete",
                                      schedule="constant", extra={"l0_lambda": 2.0}))
    m = get_method_class("ugt")(config)
    model = m.prepare(Stack(), None)
    assert torch.allclose(m.penalty(model), 2.0 * get_mask_group(model).penalty())
    plain = get_method_class("ugt")(resolve_config(RunConfig(method="ugt")))
    assert plain.penalty(plain.prepare(Stack(), None)) is None


@pytest.mark.parametrize(
    "method, kw, match",
    [
        ("dense", dict(sparsity=0.9), "--sparsity is not used by method 'dense'; its method "
                                      "flags: none"),
        ("dense", dict(weight_init="signed-constant"), "--weight-init is not used"),
        ("dense", dict(extra={"mask_scale": "none"}), "unknown --extra key 'mask_scale' for "
                                                      "method 'dense'; allowed: none"),
        ("ugt", dict(extra={"mask_scal": "none"}), "unknown --extra key 'mask_scal'"),
        ("ugt", dict(extra={"mask_scale": "half"}), "--extra mask_scale='half' is invalid for "
                                                    "method 'ugt'; allowed: auto, none, keep"),
        ("ugt", dict(extra={"mask_bias": "yes"}), "mask_bias='yes' is invalid"),
        ("ugt", dict(extra={"mask_include": 3}), "mask_include=3 is invalid"),
    ],
)
def test_options_a_method_does_not_read_are_refused(method, kw, match):
    with pytest.raises(UserError, match=match):
        resolve_config(RunConfig(method=method, **kw))


OPTIONS = [(name, key) for name, cls in METHODS.items() for key in cls.options]


@pytest.mark.parametrize("method, key", OPTIONS)
def test_every_extra_option_states_its_bounds_once_and_they_are_enforced(method, key):
    option = get_method_class(method).options[key]
    if option.default is not None:  # the declared default is a valid value
        resolve_config(RunConfig(method=method, extra={key: option.default}))
    for bad in ({"a": 1}, -1.5, True if option.kind != "bool" else 1):
        with pytest.raises(UserError) as e:
            resolve_config(RunConfig(method=method, extra={key: bad}))
        assert str(e.value) == (f"--extra {key}={bad!r} is invalid for method {method!r}; "
                                f"allowed: {option.allowed}")


def test_every_method_declares_what_it_reads():
    from gnnmask.train.config import METHOD_FIELDS

    for name, cls in METHODS.items():
        assert set(cls.reads) <= set(METHOD_FIELDS), name
        assert cls.summary() and "\n" not in cls.summary()


def test_the_papers_protocol_evaluates_target_masks_and_selects_from_every_epoch():
    config = resolve_config(RunConfig(method="ugt", sparsity=0.8, epochs=10,
                                      extra={"eval_sparsity": "target", "selection": "all"}))
    m = get_method_class("ugt")(config)
    model = m.prepare(Stack(), None)
    group = get_mask_group(model)
    m.on_epoch_start(1, model)  # early in the linear ramp
    scheduled = group.achieved_sparsity()["overall"]
    assert scheduled < 0.5 and m.selectable(1)
    with m.evaluating(model):
        assert group.achieved_sparsity()["overall"] == pytest.approx(0.8, abs=0.01)
    assert group.achieved_sparsity()["overall"] == scheduled  # training masks restored
    m.end_phase(m.phases()[0], model)
    assert group.achieved_sparsity()["overall"] == pytest.approx(0.8, abs=0.01)
    default = get_method_class("ugt")(resolve_config(RunConfig(method="ugt", epochs=10)))
    assert not default.selectable(1) and default.selectable(9)
    plain = default.prepare(Stack(), None)
    default.on_epoch_start(1, plain)
    before = get_mask_group(plain).achieved_sparsity()["overall"]
    with default.evaluating(plain):
        assert get_mask_group(plain).achieved_sparsity()["overall"] == before


def test_mask_scale_exclude_reaches_the_masks_and_the_export():
    config = resolve_config(RunConfig(method="ugt", sparsity=0.75, schedule="constant",
                                      extra={"mask_scale_exclude": ["convs.1.*"]}))
    m = get_method_class("ugt")(config)
    model = m.prepare(Stack(), None)
    group = get_mask_group(model)
    assert group.unscaled == {"convs.1.lin.weight"}
    assert group.members["convs.1.lin.weight"].scale == 1
    assert group.members["convs.0.lin.weight"].scale == 2  # 1 / sqrt(1 - 0.75)
    assert m.export(model)["unscaled"] == ["convs.1.lin.weight"]


def test_records_hold_every_resolved_method_option():
    from gnnmask.train import train

    record = train(RunConfig(dataset="csbm", method="ugt", epochs=2, hidden=8,
                             layer_metrics="none", extra={"selection": "all"}))
    assert record["method_options"]["selection"] == "all"
    assert record["method_options"]["mask_scale"] == "auto"
    assert record["method_options"]["eval_sparsity"] == "scheduled"
