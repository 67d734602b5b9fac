"""The deep backbones of the literature: each equals its paper's formula by
hand, and every backbone works as a ticket (frozen weights bit-identical)."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import DeepGCNLayer
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import to_dense_adj, to_undirected

from gnnmask.data import load_dataset
from gnnmask.errors import UserError
from gnnmask.models import MODELS, build_model
from gnnmask.models.deep import dropout, gcn_adjacency
from gnnmask.train import RunConfig, resolve_config, train
from gnnmask.train.config import upgrade_config
from gnnmask.train.engine import build


@pytest.fixture(scope="module")
def graph():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20, 5, generator=g)
    edge_index = to_undirected(torch.randint(0, 20, (2, 50), generator=g), num_nodes=20)
    ei, w = gcn_norm(edge_index, num_nodes=20)
    s = to_dense_adj(ei, edge_attr=w, max_num_nodes=20)[0].T  # S[i, j]: message j -> i
    return x, edge_index, s


def test_sgc_is_k_propagations_then_one_linear_layer(graph):
    x, ei, s = graph
    model = build_model("sgc", 5, 8, 3, 3)
    lin = model.convs[0].lin
    expected = torch.linalg.matrix_power(s, 3) @ x @ lin.weight.T + lin.bias
    assert torch.allclose(model(x, ei), expected, atol=1e-5)
    out, hidden = model(x, ei, return_hidden=True)
    assert len(hidden) == 1 and len(model.trace_modules()) == 1
    # S^K X is computed once per graph: a new graph (or features) is propagated afresh
    first = model.propagated(x, ei)
    assert model.propagated(x, ei) is first
    fewer = ei[:, ::2].clone()
    expected_fewer = build_model("sgc", 5, 8, 3, 3)
    expected_fewer.load_state_dict(model.state_dict())
    assert not torch.allclose(model(x, fewer), out)
    assert torch.allclose(model(x, fewer), expected_fewer(x, fewer), atol=1e-6)
    copy = x.clone()
    cached = model.propagated(copy, ei)
    copy[0, 0] += 1.0  # an in-place change of the features invalidates it too
    assert model.propagated(copy, ei) is not cached


def test_sgc_never_serves_a_freed_tensors_result_to_a_new_tensor(graph):
    """The cache once keyed on memory addresses and versions: a new feature
    tensor allocated where a freed one lived got the freed one's propagated
    features (a bug fixed by holding the tensors the cache was made from)."""
    x, ei, s = graph
    model = build_model("sgc", 5, 8, 3, 2).eval()
    lin = model.convs[0].lin
    for scale in (2.0, 3.0, 4.0, 5.0):
        first = x.clone()
        model(first, ei)
        del first
        second = x * scale  # new contents, version 0, often in the freed block
        expected = torch.linalg.matrix_power(s, 2) @ second @ lin.weight.T + lin.bias
        assert torch.allclose(model(second, ei), expected, atol=1e-5)


def test_sgc_drops_the_propagated_features_when_asked_and_by_default_not(graph):
    """The Bag of Tricks benchmark's SGC drops entries of S^K X before the
    linear layer; the SGC paper has no dropout, nor has gnnmask's by default."""
    x, ei, s = graph
    assert build_model("sgc", 5, 8, 3, 3).config["dropout"] == 0.0
    model = build_model("sgc", 5, 8, 3, 3, dropout=0.5)
    seen = []
    model.convs[0].lin.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    torch.manual_seed(0)
    model(x, ei)
    h = torch.linalg.matrix_power(s, 3) @ x
    kept = seen[0] != 0
    assert 0.2 < kept.float().mean() < 0.8
    assert torch.allclose(seen[0][kept], 2 * h[kept], atol=1e-5)
    model.eval()
    model(x, ei)
    assert torch.allclose(seen[1], h, atol=1e-5)


def test_a_models_own_default_comes_before_the_methods_and_old_records_keep_it():
    for method in ("dense", "rigl"):  # methods whose own default is 0.5
        assert resolve_config(RunConfig(model="sgc", method=method)).dropout == 0.0
    assert resolve_config(RunConfig(model="sgc", dropout=0.7)).dropout == 0.7
    assert resolve_config(RunConfig(model="gcn")).dropout == 0.5
    now = resolve_config(RunConfig(model="sgc")).to_dict()
    before = {**now, "dropout": None}  # a record from before SGC read a dropout
    assert upgrade_config(before) == upgrade_config(now)


@pytest.mark.parametrize("jk", ["cat", "max", "lstm"])
def test_jknet_aggregates_every_layer(graph, jk):
    x, ei, _ = graph
    torch.manual_seed(0)
    model = build_model("jknet", 5, 8, 3, 4, jk=jk, dropout=0.0)
    out, hidden = model(x, ei, return_hidden=True)
    assert out.shape == (20, 3) and len(hidden) == 1 + 4
    assert model.lin_out.in_features == (32 if jk == "cat" else 8)
    if jk != "lstm":
        stacked = torch.stack(hidden[1:])
        joined = torch.cat(hidden[1:], -1) if jk == "cat" else stacked.max(0).values
        assert torch.allclose(out, model.lin_out(joined), atol=1e-6)
    with pytest.raises(UserError, match="jk 'sum' is invalid; allowed: cat, max, lstm"):
        build_model("jknet", 5, 8, 3, 4, jk="sum")
    with pytest.raises(UserError, match="jk 'max' is not read by model 'gcn'"):
        build_model("gcn", 5, 8, 3, 4, jk="max")


@pytest.mark.parametrize("where", ["inputs", "outputs"])
def test_jknet_drops_where_jk_dropout_says(graph, where):
    """``inputs``: every convolution's input (the raw features too) and, drawn
    anew, the aggregation; ``outputs`` (PyG's and the Bag of Tricks code's):
    each layer's activated output once, that draw feeding both the next layer
    and the aggregation. Recomputed by hand with the same random draws."""
    x, ei, _ = graph
    torch.manual_seed(0)
    model = build_model("jknet", 5, 8, 3, 3, dropout=0.5, jk_dropout=where).train()
    torch.manual_seed(1)
    out = model(x, ei)
    torch.manual_seed(1)
    adj = gcn_adjacency(ei, x.size(0))
    h, outputs = x, []
    for conv in model.convs:
        if where == "inputs":
            h = dropout(h, 0.5, True)
        h = conv(h, adj).relu()
        if where == "outputs":
            h = dropout(h, 0.5, True)
        outputs.append(h)
    joined = torch.cat(outputs, -1)
    if where == "inputs":
        joined = dropout(joined, 0.5, True)
    assert torch.allclose(out, model.lin_out(joined), atol=1e-6)
    other = build_model("jknet", 5, 8, 3, 3, dropout=0.5,
                        jk_dropout="outputs" if where == "inputs" else "inputs")
    other.load_state_dict(model.state_dict())
    torch.manual_seed(1)
    assert not torch.allclose(other.train()(x, ei), out, atol=1e-3)
    assert torch.equal(other.eval()(x, ei), model.eval()(x, ei))


def test_jk_dropout_is_read_by_jknet_only_and_checked():
    assert "jk_dropout=inputs" in repr(build_model("jknet", 5, 8, 3, 2))
    with pytest.raises(UserError, match="jk_dropout 'layer' is invalid; allowed: inputs, "
                                        "outputs"):
        build_model("jknet", 5, 8, 3, 2, jk_dropout="layer")
    with pytest.raises(UserError, match="jk_dropout 'outputs' is not read by model 'gcn'"):
        build_model("gcn", 5, 8, 3, 2, jk_dropout="outputs")
    with pytest.raises(UserError, match="--jk-dropout 'outputs' is not read by model 'sgc'"):
        resolve_config(RunConfig(model="sgc", jk_dropout="outputs"))


@pytest.mark.parametrize("conv_init, bound", [("glorot", (6 / (2 * 256)) ** 0.5),
                                               ("uniform", 1 / 256 ** 0.5)])
def test_gcnii_draws_its_convolution_weights_by_conv_init(conv_init, bound):
    torch.manual_seed(0)
    model = build_model("gcnii", 5, 256, 3, 2, conv_init=conv_init)
    for conv in model.convs:
        w = conv.weight1
        # U(-b, b): every draw inside the bound, the extremes near it, std b / sqrt(3)
        assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound
        assert abs(w.std().item() - bound / 3 ** 0.5) < 0.01 * bound
    assert model.lin_in.weight.abs().max() <= 1 / 5 ** 0.5  # torch's default, 1 / sqrt(fan_in)
    conv = model.convs[0]
    conv.weight1.data.zero_()
    conv.reset_parameters()  # reset_parameters() keeps the layer's rule
    assert conv.weight1.abs().max() <= bound and conv.weight1.abs().max() > 0.99 * bound


def test_conv_init_is_refused_where_the_weights_are_redrawn():
    with pytest.raises(UserError, match="conv_init 'normal' is invalid; allowed: glorot, "
                                        "uniform"):
        build_model("gcnii", 5, 8, 3, 2, conv_init="normal")
    with pytest.raises(UserError, match="--conv-init 'uniform' is not read by model 'gcn'"):
        resolve_config(RunConfig(model="gcn", conv_init="uniform"))
    for method, extra in (("ugt", {}), ("snip", {"weight_init": "eoi"})):
        with pytest.raises(UserError, match=f"--conv-init uniform is not read by method "
                                            f"'{method}' with --weight-init "
                                            f"{extra.get('weight_init', 'kaiming-uniform')}, "
                                            "which re-draws the weights"):
            resolve_config(RunConfig(model="gcnii", method=method, conv_init="uniform", **extra))
    for method in ("dense", "snip", "rigl", "ugs"):
        config = resolve_config(RunConfig(model="gcnii", method=method, conv_init="uniform"))
        assert config.conv_init == "uniform"


def test_gprgnn_starts_as_personalised_pagerank_and_sums_the_steps(graph):
    x, ei, s = graph
    model = build_model("gprgnn", 5, 8, 3, 4, alpha=0.2, dropout=0.0)
    a = 0.2
    assert model.gamma.tolist() == pytest.approx([a, a * 0.8, a * 0.8 ** 2, a * 0.8 ** 3,
                                                  0.8 ** 4])
    with torch.no_grad():
        model.gamma.copy_(torch.tensor([0.5, -1.0, 0.25, 2.0, 0.1]))
    z = model.lin_out(torch.relu(model.lin_in(x)))
    expected = sum(g * torch.linalg.matrix_power(s, k) @ z
                   for k, g in enumerate(model.gamma.detach()))
    assert torch.allclose(model(x, ei), expected, atol=1e-5)
    model.reset_parameters()
    assert model.gamma[-1].item() == pytest.approx(0.8 ** 4)


def test_dagnn_retains_each_step_by_a_learnt_score(graph):
    x, ei, s = graph
    model = build_model("dagnn", 5, 8, 3, 3, dropout=0.0)
    z = model.lin_out(torch.relu(model.lin_in(x)))
    steps = [torch.linalg.matrix_power(s, k) @ z for k in range(4)]
    expected = sum(torch.sigmoid(model.retain(h)) * h for h in steps)
    assert torch.allclose(model(x, ei), expected, atol=1e-5)


def test_resgcn_blocks_are_pygs_res_plus_blocks(graph):
    x, ei, _ = graph
    torch.manual_seed(0)
    model = build_model("resgcn", 5, 8, 3, 3, norm="layer", dropout=0.0)
    out, hidden = model(x, ei, return_hidden=True)
    assert len(hidden) == 1 + 3 and out.shape == (20, 3)
    adjacency = model.graph(x, ei)
    for i in (1, 2):
        block = DeepGCNLayer(model.convs[i], model.norms[i - 1], model.act, block="res+")
        assert torch.allclose(hidden[i + 1], block(hidden[i], *adjacency), atol=1e-6)
    final = model.lin_out(model.act(model.norms[-1](hidden[-1])))
    assert torch.allclose(out, final, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_every_backbone_is_a_ticket_with_bit_identical_frozen_weights(name):
    data = load_dataset("csbm", nodes=200, classes=3, features=10, seed=0)
    options = {"heads": 2} if "heads" in MODELS[name].reads else {}
    config = RunConfig(dataset="csbm", model=name, layers=3, hidden=8, epochs=3, lr=0.1,
                       method="ugt", sparsity=0.5, layer_metrics="none", **options)
    before, _ = build(resolve_config(config), data)
    initial = {n: p.detach().clone() for n, p in before.named_parameters()
               if "score" not in n}
    record, after = train(config, data=data, return_model=True)
    assert record["status"] == "finished"
    final = {n: p.detach() for n, p in after.named_parameters() if n in initial}
    assert final.keys() == initial.keys()
    assert all(torch.equal(final[n], initial[n]) for n in initial)  # no weight moved
    assert record["method"]["achieved_sparsity"] == pytest.approx(0.5, abs=0.02)


def test_a_gat_ticket_with_the_gat_codes_dropout_keeps_its_weights_bit_identical():
    # --gat-dropout heads computes the heads' projections itself: through the
    # masked weight, and with no update to the frozen one
    data = load_dataset("csbm", nodes=200, classes=3, features=10, seed=0)
    config = RunConfig(dataset="csbm", model="gat", layers=2, hidden=8, heads=2, epochs=3,
                       lr=0.1, method="ugt", sparsity=0.5, dropout=0.5, gat_dropout="heads",
                       layer_metrics="none")
    before, _ = build(resolve_config(config), data)
    initial = {n: p.detach().clone() for n, p in before.named_parameters() if "score" not in n}
    record, after = train(config, data=data, return_model=True)
    assert record["status"] == "finished" and record["config"]["gat_dropout"] == "heads"
    assert type(after.convs[0]).__name__ == "GATHeadsConv"
    final = {n: p.detach() for n, p in after.named_parameters() if n in initial}
    assert all(torch.equal(final[n], initial[n]) for n in initial)
    scores = [p for n, p in after.named_parameters() if "score" in n]
    assert scores and all(p.grad is not None and p.grad.abs().sum() > 0 for p in scores)
    assert record["method"]["achieved_sparsity"] == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("aggr", ["sum", "mean", "max"])
def test_gin_applies_its_mlp_to_itself_plus_the_aggregated_neighbours(graph, aggr):
    x, ei, _ = graph
    model = build_model("gin", 5, 8, 3, 1, aggr=aggr).eval()
    a = to_dense_adj(ei, max_num_nodes=20)[0].T  # a[i, j]: message j -> i
    if aggr == "sum":
        agg = a @ x
    elif aggr == "mean":
        agg = a @ x / a.sum(1, keepdim=True).clamp(min=1)
    else:
        agg = torch.stack([x[a[i] > 0].max(0).values if a[i].any() else torch.zeros(5)
                           for i in range(20)])
    assert torch.allclose(model(x, ei), model.convs[0].nn(x + agg), atol=1e-5)
    if aggr != "sum":
        assert not torch.allclose(model(x, ei), model.convs[0].nn(x + a @ x), atol=1e-3)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_every_gin_mlp_is_hidden_units_wide_inside_the_last_too(layers):
    # A last MLP narrowed to the class count puts a 3-unit ReLU before the
    # logits, which a ticket kills within a few epochs (constant output).
    model = build_model("gin", 5, 8, 3, layers)
    widths = [(c.nn[0].in_features, c.nn[0].out_features, c.nn[2].out_features)
              for c in model.convs]
    dims = [5] + [8] * (layers - 1) + [3]
    assert widths == [(dims[i], 8, dims[i + 1]) for i in range(layers)]


def test_aggr_is_read_by_gin_only_and_checked():
    with pytest.raises(UserError, match="aggr 'mean' is not read by model 'gcn'"):
        build_model("gcn", 5, 8, 3, 2, aggr="mean")
    with pytest.raises(UserError, match="aggr 'median' is invalid; allowed: sum, mean, max"):
        build_model("gin", 5, 8, 3, 2, aggr="median")


def test_group_norm_is_pygs_diff_group_norm(graph):
    from torch_geometric.nn import DiffGroupNorm

    x, ei, _ = graph
    model = build_model("gcn", 5, 20, 3, 3, norm="group")
    assert all(isinstance(n, DiffGroupNorm) and n.groups == 10 for n in model.norms)
    assert model(x, ei).shape == (20, 3)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_gin_ugt_is_the_untrained_tickets_codes_layout(graph, layers):
    """One linear layer of ``h + mean_j h_j`` per layer, ReLU after each (the
    last too), and the logits averaged with a read-out of the last hidden
    state (``x`` with one layer)."""
    x, ei, _ = graph
    model = build_model("gin-ugt", 5, 8, 3, layers, bias=False).eval()
    a = to_dense_adj(ei, max_num_nodes=20)[0].T  # a[i, j]: message j -> i
    degree = a.sum(1, keepdim=True).clamp(min=1)
    states = [x]
    for conv in model.convs:
        states.append(torch.relu(conv.nn(states[-1] + a @ states[-1] / degree)))
    out, hidden = model(x, ei, return_hidden=True)
    assert torch.allclose(out, (model.lin_out(states[-2]) + states[-1]) / 2, atol=1e-6)
    assert len(hidden) == layers and torch.allclose(hidden[-1], states[-2])
    assert all(isinstance(conv.nn, torch.nn.Linear) and conv.nn.bias is None
               for conv in model.convs)
    assert model.lin_out.in_features == (5 if layers == 1 else 8)


def test_gin_ugt_refuses_what_its_layout_does_not_have():
    for key, value in (("aggr", "max"), ("norm", "layer"), ("residual", "plain"),
                       ("activation", "elu")):
        with pytest.raises(UserError, match=f"{key} {value!r} is not read by model 'gin-ugt'"):
            build_model("gin-ugt", 8, 8, 3, 2, **{key: value})
