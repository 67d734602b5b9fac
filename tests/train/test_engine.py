"""The training engine: determinism, model selection, early stopping, records."""

import math
import os
import platform
import subprocess
import sys

import pytest
import torch

from gnnmask.data import load_dataset
from gnnmask.errors import UserError
from gnnmask.methods import Method, register_method
from gnnmask.train import RunConfig, count_parameters, resolve_config, train


@pytest.fixture(scope="module")
def csbm():
    return load_dataset("csbm", nodes=300, classes=3, features=16, seed=0)


def small(**kw):
    base = dict(dataset="csbm", layers=2, hidden=16, epochs=15, device="cpu")
    base.update(kw)
    return RunConfig(**base)


def test_run_is_bit_reproducible_under_a_seed(csbm):
    a = train(small(seed=3), data=csbm)
    b = train(small(seed=3), data=csbm)
    strip = lambda h: [{k: v for k, v in r.items() if k != "step_s"} for r in h]  # noqa: E731
    assert strip(a["history"]) == strip(b["history"])
    c = train(small(seed=4), data=csbm)
    assert strip(a["history"]) != strip(c["history"])


def test_dense_training_learns_and_selects_best_validation_state(csbm):
    rec = train(small(epochs=40), data=csbm)
    vals = [r["val_acc"] for r in rec["history"]]
    assert rec["val_acc"] == max(vals)
    assert rec["best_epoch"] == vals.index(max(vals))
    assert rec["test_acc"] > 0.8  # csbm default is easy for a 2-layer GCN
    assert rec["history"][-1]["loss"] < rec["history"][0]["loss"]


def test_record_holds_config_versions_and_counts(csbm):
    rec = train(small(), data=csbm)
    assert rec["config"]["dropout"] == 0.5 and rec["config"]["weight_decay"] == 5e-4
    assert {"torch", "torch_geometric", "gnnmask", "python"} <= set(rec["versions"])
    assert rec["params"] == rec["nonzero_params"] > 0
    assert rec["epochs_run"] == 15 and rec["epoch_time_s"] > 0
    n_test = int(csbm.test_mask.sum())  # accuracies count whole test nodes
    assert all(abs(r["test_acc"] * n_test - round(r["test_acc"] * n_test)) < 1e-3
               and math.isfinite(r["loss"]) for r in rec["history"])
    assert rec["test_acc"] == rec["history"][rec["best_epoch"]]["test_acc"]


def test_lr_schedules(csbm):
    const = train(small(epochs=10, lr=0.02), data=csbm)
    assert [r["lr"] for r in const["history"]] == [0.02] * 10
    cos = train(small(epochs=10, lr=0.02, lr_schedule="cosine"), data=csbm)
    lrs = [r["lr"] for r in cos["history"]]
    expected = [0.01 * (1 + math.cos(math.pi * e / 10)) for e in range(10)]
    assert lrs == pytest.approx(expected, rel=1e-9)
    with pytest.raises(UserError, match="--lr-schedule 'step'; allowed: constant, cosine"):
        train(small(lr_schedule="step"), data=csbm)


def test_patience_stops_early(csbm):
    rec = train(small(epochs=200, patience=3, lr=0.05), data=csbm)
    assert rec["epochs_run"] < 200


def test_count_parameters_counts_zeros():
    lin = torch.nn.Linear(4, 3)
    with torch.no_grad():
        lin.weight[0].zero_()
    assert count_parameters(lin) == (15, 11)


def test_method_hooks_are_called_in_order(csbm):
    calls = []

    @register_method
    class Probe(Method):
        name = "probe-test"
        defaults = {"dropout": 0.0}

        def on_epoch_start(self, epoch, model):
            calls.append(("start", epoch))

        def after_backward(self, epoch, model):
            calls.append(("backward", epoch))

        def after_step(self, epoch, model, optimizer):
            calls.append(("step", epoch))

        def selectable(self, epoch):
            return epoch >= 2

    rec = train(small(method="probe-test", epochs=3), data=csbm)
    assert calls == [(k, e) for e in range(3) for k in ("start", "backward", "step")]
    assert rec["best_epoch"] == 2 and rec["config"]["dropout"] == 0.0


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(method="nope"), "unknown method 'nope'"),
        (dict(model="mlp"), "unknown --model 'mlp'; allowed: appnp, dagnn, gat, gcn"),
        (dict(layers=0), "--layers 0"),
        (dict(optimizer="lbfgs"), "unknown --optimizer 'lbfgs'; allowed: adam, adamw"),
        (dict(method="ugt", sparsity=1.0), "--sparsity 1.0"),
        (dict(method="ugt", mask_rule="fixed"), "unknown --mask-rule 'fixed'; allowed: global"),
        (dict(method="dense", schedule="linear"), "--schedule is not used by method 'dense'"),
        (dict(method="ugt", extra={"l0_lambda": -1}), "l0_lambda=-1 is invalid"),
        (dict(device="tpu"), "unknown device 'tpu'"),
        (dict(epochs=0), "--epochs 0"),
    ],
)
def test_invalid_configs_raise_one_line_user_errors(kw, match):
    with pytest.raises(UserError, match=match) as info:
        resolve_config(small(**kw))
    assert "\n" not in str(info.value)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
@pytest.mark.parametrize(("env", "expected"), [("1", "True True"), ("0", "False False")])
def test_allocator_tuning_is_idempotent_and_can_be_turned_off(env, expected):
    if env == "1" and platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt needs glibc")
    code = ("from gnnmask.train.runtime import tune_cpu_allocator as t; "
            "print(t(), t())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "GNNMASK_MALLOC_TUNING": env}, check=True)
    assert out.stdout.split() == expected.split()


def test_training_leaves_flush_to_zero_to_the_command_line(csbm):
    """The library sets no process-wide flag; the CLI turns flush-to-zero on."""
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals")
    torch.set_flush_denormal(False)
    tiny = torch.tensor([1e-39], dtype=torch.float32)
    train(small(epochs=1), data=csbm)
    assert tiny.mul(1.0).item() != 0.0  # a denormal survives arithmetic
    code = ("import torch; from gnnmask.cli.main import main; main(['datasets']); "
            "print(torch.tensor([1e-39]).mul(1.0).item())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split()[-1] == "0.0"


def test_grad_clip_bounds_the_gradient_norm_and_is_recorded(csbm):
    # SGD: the step is proportional to the (clipped) gradient
    rec = train(small(epochs=3, optimizer="sgd", lr=0.5, dropout=0.0, weight_decay=0.0,
                      grad_clip=1e-3), data=csbm)
    norms = [row["grad_norm"] for row in rec["history"]]
    assert all(n > 1e-3 for n in norms)  # the norm before clipping is recorded
    free = train(small(epochs=3, optimizer="sgd", lr=0.5, dropout=0.0, weight_decay=0.0),
                 data=csbm)
    assert "grad_norm" not in free["history"][0]
    change = lambda r: abs(r["history"][1]["loss"] - r["history"][0]["loss"])  # noqa: E731
    assert change(rec) < 0.01 * change(free)
    with pytest.raises(UserError, match="--grad-clip 0"):
        train(small(grad_clip=0), data=csbm)


def test_mask_training_keeps_moving_under_the_fused_optimizer(csbm):
    # fused optimisers do not bump version counters; a stale mask cache would
    # freeze the loss from the second step on
    rec = train(small(method="ugt", schedule="constant", sparsity=0.5, epochs=6), data=csbm)
    assert rec["optimizer_impl"] == "fused"
    losses = [row["loss"] for row in rec["history"]]
    assert len(set(losses)) == len(losses)


def test_amsgrad_optimizer_choice(csbm):
    from gnnmask.train.engine import build, make_optimizer

    config = resolve_config(small(optimizer="amsgrad"))
    model, method = build(config, csbm)
    opt = make_optimizer(config, method, model)
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["amsgrad"]
    with pytest.raises(UserError, match="unknown --optimizer 'lamb'"):
        train(small(optimizer="lamb"), data=csbm)


def test_label_smoothing_is_the_loss_of_the_smoothed_targets(csbm):
    import torch.nn.functional as F

    from gnnmask.train.engine import build, make_optimizer, training_step

    eps = 0.2
    config = resolve_config(small(label_smoothing=eps, dropout=0.0))
    model, method = build(config, csbm)
    with torch.no_grad():
        logp = F.log_softmax(model(csbm.x, csbm.edge_index)[csbm.train_mask], dim=-1)
    y = csbm.y[csbm.train_mask]
    target = torch.full_like(logp, eps / logp.size(1))
    target[torch.arange(y.numel()), y] += 1.0 - eps
    expected = float(-(target * logp).sum(dim=1).mean())
    row = training_step(config, model, method, make_optimizer(config, method, model), csbm, 0)
    assert row["loss"] == pytest.approx(expected, rel=1e-5)
    plain = train(small(epochs=1, dropout=0.0), data=csbm)["history"][0]["loss"]
    assert plain != pytest.approx(expected, rel=1e-3)
    with pytest.raises(UserError, match="--label-smoothing 1.0"):
        train(small(label_smoothing=1.0), data=csbm)


# divergence is a result, not an exception
def test_a_diverging_run_is_recorded_with_its_best_finite_state(csbm):
    @register_method
    class Blowup(Method):
        name = "blowup-test"
        defaults = {"dropout": 0.0}

        def after_step(self, epoch, model, optimizer):
            if epoch == 4:  # the weights become non-finite after the 5th step
                with torch.no_grad():
                    for p in model.parameters():
                        p.fill_(float("nan"))

    rec = train(small(method="blowup-test", epochs=10, layer_metrics="mad"), data=csbm)
    assert rec["status"] == "diverged"
    assert rec["diverged"] == {"epoch": 4, "reason": "validation loss nan", "restored": True}
    assert rec["epochs_run"] == 4 and [r["epoch"] for r in rec["history"]] == [0, 1, 2, 3]
    best = max(rec["history"], key=lambda r: r["val_acc"])
    assert rec["best_epoch"] == best["epoch"] and rec["val_acc"] == best["val_acc"]
    assert rec["test_acc"] == best["test_acc"] and math.isfinite(rec["test_acc"])
    assert rec["layers"] and all(math.isfinite(r["mad"]) for r in rec["layers"])


def test_a_run_diverging_in_its_first_step_keeps_no_metrics(csbm):
    rec = train(small(epochs=3, lr=1e38), data=csbm)
    assert rec["status"] == "diverged" and rec["diverged"]["restored"] is False
    assert rec["diverged"]["epoch"] == 0 and rec["diverged"]["best_finite_epoch"] is None
    assert rec["test_acc"] is None and rec["val_acc"] is None and rec["layers"] == []
    finished = train(small(epochs=3), data=csbm)
    assert finished["status"] == "finished"
    # the cost fields describe the architecture and masks even when nothing was kept
    assert rec["dense_macs"] == finished["dense_macs"] > 0
    assert rec["dense_model_bytes"] == finished["dense_model_bytes"] > 0


@pytest.mark.parametrize("value", [float("inf"), float("nan"), True])
def test_non_finite_or_boolean_numbers_are_refused(value):
    with pytest.raises(UserError, match="--lr") as info:
        resolve_config(small(lr=value))
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="--layers True is invalid"):
        resolve_config(small(layers=True))


def test_train_refuses_data_of_another_dataset(csbm):
    with pytest.raises(UserError, match="'cora'") as info:
        train(small(dataset="cora"), data=csbm)
    assert "\n" not in str(info.value)
    data = csbm.clone()
    data.name = "my-graph"  # a user's own graph is recorded under its own name
    assert train(small(dataset="my-graph", epochs=2), data=data)["config"]["dataset"] == \
        "my-graph"


def test_train_checks_its_argument_types(csbm):
    with pytest.raises(TypeError, match="argument 'config' is a Data; allowed: a gnnmask"):
        train(csbm, small())


def test_final_layer_metrics_say_they_are_running(csbm, caplog):
    with caplog.at_level("INFO", logger="gnnmask.train.engine"):
        train(small(epochs=2, layer_metrics="mad,norm"), data=csbm, log_every=1)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[-1] == "csbm dense L2 seed 0: layer metrics (mad, norm) of every layer"


def test_train_leaves_the_callers_random_states_and_data_alone(csbm):
    import random

    import numpy as np

    random.seed(11), np.random.seed(11), torch.manual_seed(11)
    states = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()
    x, device = csbm.x, csbm.x.device
    a = train(small(epochs=2, dropout=0.5), data=csbm)
    assert random.getstate() == states[0]
    assert (np.random.get_state()[1] == states[1]).all()
    assert torch.equal(torch.get_rng_state(), states[2])
    assert csbm.x is x and csbm.x.device == device and "features" not in csbm
    torch.manual_seed(5)  # the run's own seed decides, not the caller's state
    strip = lambda h: [{k: v for k, v in r.items() if k != "step_s"} for r in h]  # noqa: E731
    assert strip(train(small(epochs=2, dropout=0.5), data=csbm)["history"]) == strip(
        a["history"])


def test_traces_record_the_chosen_layer_metrics(csbm):
    rec = train(small(epochs=2, trace_every=1, layer_metrics="mad,norm"), data=csbm)
    assert [t["epoch"] for t in rec["layer_trace"]] == [-1, 0, 1]
    assert all(set(row) == {"layer", "name", "dim", "mad", "norm"}
               for t in rec["layer_trace"] for row in t["layers"])
    off = train(small(epochs=1, trace_every=1, layer_metrics="none"), data=csbm)
    assert off["layers"] == [] and "effective_rank" in off["layer_trace"][0]["layers"][0]


def test_drop_edge_and_drop_node_act_on_training_inputs_only():
    from torch_geometric.utils import to_undirected

    from gnnmask.train.engine import drop_graph

    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 4, generator=g)
    ei = to_undirected(torch.randint(0, 40, (2, 120), generator=g), num_nodes=40)
    w = torch.arange(ei.size(1), dtype=torch.float)
    plain = RunConfig()
    assert drop_graph(plain, (x, ei, w)) == (x, ei, w)  # off: the inputs as given
    torch.manual_seed(3)
    x2, kept, w2 = drop_graph(RunConfig(drop_edge=0.5), (x, ei, w))
    assert x2 is x and 0 < kept.size(1) < ei.size(1)
    assert torch.equal(kept, ei[:, w2.long()])  # each weight stays with its edge
    torch.manual_seed(3)
    assert torch.equal(drop_graph(RunConfig(drop_edge=0.5), (x, ei, w))[1], kept)  # seeded
    _, by_node, w3 = drop_graph(RunConfig(drop_node=0.5), (x, ei, w))
    touched = set(by_node.flatten().tolist())
    assert by_node.size(1) < ei.size(1) and len(touched) < 40
    assert torch.equal(by_node, ei[:, w3.long()])
    data = load_dataset("csbm", nodes=200, classes=3, features=10, seed=0)
    record = train(RunConfig(dataset="csbm", hidden=8, epochs=3, layer_metrics="none",
                             drop_edge=0.3, drop_node=0.1), data=data)
    assert record["status"] == "finished" and record["config"]["drop_edge"] == 0.3
    with pytest.raises(UserError, match="--drop-edge 1.0 is out of range; allowed: 0 <= p < 1"):
        resolve_config(RunConfig(drop_edge=1.0))


def test_a_compact_record_keeps_every_final_metric_and_drops_only_the_history(csbm):
    full = train(small(seed=1), data=csbm)
    compact = train(small(seed=1, history=False), data=csbm)
    assert "history" in full and "history" not in compact
    drop = ("history", "config", "total_time_s", "epoch_time_s")
    assert {k: v for k, v in compact.items() if k not in drop} == \
        {k: v for k, v in full.items() if k not in drop}
    assert compact["config"]["history"] is False and compact["epoch_time_s"] > 0


def test_gcnii_convolutions_can_be_decayed_apart_from_its_linear_layers(csbm):
    from gnnmask.train.engine import build, make_optimizer

    config = resolve_config(small(model="gcnii", layers=3, weight_decay=5e-4,
                                  conv_weight_decay=0.01))
    model, method = build(config, csbm)
    opt = make_optimizer(config, method, model)
    convs = {id(p) for p in model.convs.parameters()}
    decays = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    trained = [p for p in model.parameters() if p.requires_grad]
    assert sorted(decays) == sorted(id(p) for p in trained)  # each once
    assert {decays[i] for i in convs} == {0.01}
    assert {decays[id(p)] for p in trained if id(p) not in convs} == {5e-4}
    record = train(config, data=csbm)
    assert record["config"]["conv_weight_decay"] == 0.01


@pytest.mark.parametrize("changes, match", [
    (dict(model="gcn"), r"--conv-weight-decay is not read by model 'gcn'; allowed with: gcnii"),
    (dict(model="gcnii", method="ugt"), r"not read by method 'ugt', which trains no weights"),
    (dict(model="gcnii", conv_weight_decay=-1.0), r"--conv-weight-decay -1.0 is invalid"),
])
def test_conv_weight_decay_is_refused_where_nothing_reads_it(changes, match):
    with pytest.raises(UserError, match=match):
        resolve_config(small(**{"conv_weight_decay": 0.01, **changes}))


def test_selection_by_validation_loss_keeps_the_epoch_of_lowest_loss(csbm):
    rec = train(small(epochs=40, select="val_loss"), data=csbm)
    losses = [r["val_loss"] for r in rec["history"]]
    assert rec["best_epoch"] == losses.index(min(losses))
    assert rec["test_acc"] == rec["history"][rec["best_epoch"]]["test_acc"]
    by_acc = train(small(epochs=40), data=csbm)
    vals = [r["val_acc"] for r in by_acc["history"]]
    assert by_acc["best_epoch"] == vals.index(max(vals))
    assert rec["best_epoch"] != by_acc["best_epoch"]  # the two criteria pick differently here
    stopped = train(small(epochs=400, select="val_loss", patience=5), data=csbm)
    losses = [r["val_loss"] for r in stopped["history"]]
    best = losses.index(min(losses))
    assert stopped["epochs_run"] == best + 1 + 5 < 400  # five epochs without a lower loss


def _gat_rule(history):
    """The GAT code's early stopping replayed by hand over a history: the
    kept epoch and the epoch after which patience 5 stops."""
    acc_best, loss_best, kept, bad = -1.0, float("inf"), None, 0
    for r in history:
        a, l = r["val_acc"], r["val_loss"]
        if a >= acc_best or l <= loss_best:
            if a >= acc_best and l <= loss_best:
                kept = r["epoch"]
            acc_best, loss_best, bad = max(acc_best, a), min(loss_best, l), 0
        else:
            bad += 1
            if bad == 5:
                return kept, r["epoch"]
    return kept, None


def test_selection_by_the_gat_rule_keeps_an_epoch_best_on_accuracy_and_loss_together(csbm):
    rec = train(small(epochs=60, select="val_acc_and_loss"), data=csbm)
    kept, _ = _gat_rule(rec["history"])
    assert rec["best_epoch"] == kept
    assert rec["test_acc"] == rec["history"][kept]["test_acc"]
    by_loss = train(small(epochs=60, select="val_loss"), data=csbm)
    by_acc = train(small(epochs=60), data=csbm)
    # the three rules keep three different epochs on this run
    assert len({rec["best_epoch"], by_loss["best_epoch"], by_acc["best_epoch"]}) == 3
    stopped = train(small(epochs=400, select="val_acc_and_loss", patience=5), data=csbm)
    kept, last = _gat_rule(stopped["history"])
    assert last is not None and stopped["epochs_run"] == last + 1 < 400
    assert stopped["best_epoch"] == kept


def test_selection_rule_object_tracks_both_records():
    from gnnmask.train.engine import Selection

    s = Selection("val_acc_and_loss")
    steps = [({"val_acc": 0.5}, 1.0), ({"val_acc": 0.6}, 1.2), ({"val_acc": 0.55}, 0.9),
             ({"val_acc": 0.6}, 0.8), ({"val_acc": 0.4}, 2.0)]
    assert [s.update(*x) for x in steps] == [(True, True), (False, True), (False, True),
                                             (True, True), (False, False)]
    assert (s.acc, s.loss) == (0.6, 0.8)
    assert repr(s) == "Selection('val_acc_and_loss')"


def test_the_gat_rule_is_refused_where_the_metric_is_not_accuracy():
    with pytest.raises(UserError, match=r"--select val_acc_and_loss is not a metric of --task "
                                        r"link .*; allowed: val_auc, val_loss$"):
        resolve_config(small(task="link", select="val_acc_and_loss"))
