"""Training tricks for sparse networks (ToST components)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gnnmask.data import load_dataset
from gnnmask.errors import UserError
from gnnmask.masks import get_mask_group
from gnnmask.models import build_model
from gnnmask.train import RunConfig, resolve_config, train
from gnnmask.train.engine import build, model_features
from gnnmask.train.tricks import GHOST_BRANCH_INIT, GRADINIT_LR, GhostActivation, Tricks


@pytest.fixture(scope="module")
def csbm():
    return load_dataset("csbm", nodes=240, classes=3, features=12, seed=0)


def small(**kw):
    base = dict(dataset="csbm", layers=4, hidden=16, epochs=6, device="cpu", dropout=0.0,
                layer_metrics="none", method="random", sparsity=0.8)
    return RunConfig(**{**base, **kw})


def test_ghost_activation_mixes_silu_into_relu():
    x = torch.linspace(-3, 3, 13)
    assert torch.allclose(GhostActivation(0.25)(x), 0.75 * F.silu(x) + 0.25 * F.relu(x))
    assert torch.equal(GhostActivation(1.0)(x), F.relu(x))


def test_ghost_components_anneal_to_the_plain_model_by_their_epoch(csbm):
    config = resolve_config(small(ghost_soft=4, ghost_skip=2))
    model, _ = build(config, csbm)
    tricks = Tricks(config)
    tricks.on_epoch_start(1, model)
    assert isinstance(model.act, GhostActivation) and model.act.level == 0.25
    assert model.ghost_skip == 0.5
    tricks.on_epoch_start(2, model)
    assert model.ghost_skip == 0.0 and model.act.level == 0.5
    tricks.on_epoch_start(4, model)
    assert isinstance(model.act, nn.ReLU)
    record, trained = train(config, data=csbm, return_model=True)
    assert record["tricks"] == {"ghost_soft": 4, "ghost_skip": 2, "ghost_form": "identity"}
    torch.manual_seed(0)
    plain = build_model("gcn", 12, 16, 3, 4, dropout=0.0)
    from gnnmask.masks import unmask_model

    unmask_model(trained)
    plain.load_state_dict(trained.state_dict())
    trained.eval(), plain.eval()
    assert torch.equal(trained(csbm.x, csbm.edge_index), plain(csbm.x, csbm.edge_index))


def test_rescaled_init_gives_unit_std_outputs_and_keeps_the_mask(csbm):
    config = resolve_config(small(rescale_init=6, layers=6, weight_init="default"))
    model, method = build(config, csbm)
    group = get_mask_group(model)
    masks = {n: m.clone() for n, m in group.masks().items()}
    factors = Tricks(config).rescale(model, method, csbm)
    assert len(factors) == 6 and any(abs(f - 1) > 0.1 for f in factors.values())
    stds = []
    hooks = [module.register_forward_hook(lambda m, a, out: stds.append(float(out.detach().std())))
             for module, _ in group.targets.values()]
    model.eval()
    model(*method.inputs(csbm))
    for h in hooks:
        h.remove()
    assert all(abs(s - 1) < 0.15 for s in stds), stds
    for name, (module, attr) in group.targets.items():
        assert torch.equal(group.masks()[name], masks[name])
        assert (module.parametrizations[attr].original[~masks[name]] == 0).all()


def test_rescaled_init_reaches_a_first_layer_fed_sparse_features(csbm):
    """With bag-of-words-like features the first GCN layer applies its weight
    without calling its ``lin`` module; the layer's own output is measured."""
    config = resolve_config(small(rescale_init=6, layers=2, weight_init="default"))
    data = csbm.clone()
    gen = torch.Generator().manual_seed(0)
    data.x = data.x.abs() * (torch.rand(data.x.shape, generator=gen) < 0.04)
    data.features = model_features(config, data.x)
    assert data.features.layout == torch.sparse_csr
    model, method = build(config, data)
    factors = Tricks(config).rescale(model, method, data)
    first = next(iter(factors))
    assert first.startswith("convs.0.") and abs(factors[first] - 1) > 0.1
    stds = []
    hook = model.convs[0].register_forward_hook(
        lambda m, a, out: stds.append(float(out.detach().std())))
    model.eval()
    model(*method.inputs(data))
    hook.remove()
    assert abs(stds[0] - 1) < 0.15, stds


def test_the_final_model_is_chosen_among_epochs_without_the_ghost_skip(csbm):
    # A state trained with the skip is no model of the run: before the fix the best
    # validation epoch here was 3 < K, evaluated without its skip at chance level.
    config = small(ghost_skip=8, epochs=10, lr=0.01)
    record = train(config, data=csbm)
    assert record["best_epoch"] >= 8
    tricks = Tricks(resolve_config(config))
    assert [tricks.selectable(e) for e in range(10)] == [False] * 8 + [True] * 2


def test_ghost_branches_are_trained_unmasked_and_dropped_at_their_epoch(csbm):
    config = resolve_config(small(ghost_skip=3, ghost_form="branch", sparsity=0.9))
    model, method = build(config, csbm)
    masked = set(get_mask_group(model).targets)
    tricks = Tricks(config)
    tricks.prepare(model)
    assert sorted(model.ghost_branches) == ["1", "2"]  # hidden -> hidden layers of 4
    for branch in model.ghost_branches.values():
        assert (branch[0].weight == GHOST_BRANCH_INIT).all()
        assert isinstance(branch[1], nn.BatchNorm1d)
    assert set(get_mask_group(model).targets) == masked  # branches carry no mask
    trained = {id(p) for p in method.parameters(model)}
    assert all(id(p) in trained for p in model.ghost_branches.parameters())
    tricks.on_epoch_start(2, model)
    assert model.ghost_branches is not None
    tricks.on_epoch_start(3, model)
    assert model.ghost_branches is None
    record, final = train(config, data=csbm, return_model=True)
    assert final.ghost_branches is None and record["best_epoch"] >= 3
    assert record["tricks"] == {"ghost_skip": 3, "ghost_form": "branch"}
    # K >= epochs keeps them, as the released code does: trained, counted, evaluated
    kept, model = train(config.replace(ghost_skip=6), data=csbm, return_model=True)
    weights = [b[0].weight for b in model.ghost_branches.values()]
    assert all(not torch.equal(w, torch.full_like(w, GHOST_BRANCH_INIT)) for w in weights)
    assert kept["nonzero_params"] >= record["nonzero_params"] + 2 * 16 * 16


def test_gradinit_scales_each_tensor_and_keeps_the_mask(csbm):
    config = resolve_config(small(rescale_init=1, rescale_rule="gradinit", layers=3))
    model, method = build(config, csbm)
    group = get_mask_group(model)
    masks = {n: m.clone() for n, m in group.masks().items()}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    scales = Tricks(config).rescale(model, method, csbm)
    # one Adam step from 1 moves each scale by the learning rate against its gradient
    assert scales and all(s in (pytest.approx(1 - GRADINIT_LR), pytest.approx(1 + GRADINIT_LR),
                                1.0) for s in scales.values())
    assert any(s != 1.0 for s in scales.values())
    after = dict(model.named_parameters())
    for name, s in scales.items():
        assert torch.equal(after[name].detach(), torch.tensor(s, dtype=torch.float64).to(
            before[name].dtype) * before[name])
    for name, (module, attr) in group.targets.items():
        assert torch.equal(group.masks()[name], masks[name])
        assert (module.parametrizations[attr].original[~masks[name]] == 0).all()
    # many steps: weight scales stay at or above their floor, deterministic
    config = config.replace(rescale_init=40)
    runs = []
    for _ in range(2):
        model, method = build(config, csbm)
        runs.append(Tricks(config).rescale(model, method, csbm))
    assert runs[0] == runs[1] and all(s >= 0.01 - 1e-12 for s in runs[0].values())
    record = train(config.replace(epochs=2), data=csbm)
    assert record["tricks"]["rescale_rule"] == "gradinit" and record["tricks"]["scales"]


@pytest.mark.parametrize("kw, match", [
    (dict(method="ugt", rescale_init=3), "keeps its weights frozen"),
    (dict(rescale_rule="gradinit"), "--rescale-rule gradinit is not used without"),
    (dict(ghost_form="branch"), "--ghost-form branch is not used without --ghost-skip"),
    (dict(method="ugt", ghost_skip=2, ghost_form="branch"), "trains no weights"),
    (dict(ghost_soft=3, activation="tanh"), "anneals to ReLU"),
    (dict(ghost_skip=-1), "--ghost-skip -1"),
    (dict(ghost_skip=5, layers=2), "--ghost-skip adds skips .*--layers 2 has none"),
])
def test_tricks_that_cannot_apply_are_refused(kw, match):
    with pytest.raises(UserError, match=match):
        resolve_config(small(**kw))
