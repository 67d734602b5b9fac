"""Export: compact inference files equal to the masked model on every node,
kept entries and kept edges only, runnable with PyTorch alone, clear refusals."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gnnmask.export.runtime as runtime_module
from gnnmask.cli import main
from gnnmask.data import load_dataset
from gnnmask.errors import UserError
from gnnmask.export import export_model, exportable_models, save_export
from gnnmask.export.runtime import ExportedGNN, load
from gnnmask.masks import get_mask_group, mask_model, sparsify
from gnnmask.models import MODELS, build_model

N, F, H, C = 200, 12, 16, 3


@pytest.fixture(scope="module")
def data():
    return load_dataset("csbm", nodes=N, classes=C, features=F, seed=0)


VARIANTS = [("gcn", {}), ("gcn", {"norm": "pair", "residual": "initial"}),
            ("gcn", {"norm": "layer", "residual": "plain"}), ("gcn", {"norm": "batch"}),
            ("gcnii", {"norm": "layer"}), ("gcnii", {"residual": "plain", "theta": 1.0}),
            ("appnp", {"alpha": 0.2}), ("sgc", {}), ("gprgnn", {"alpha": 0.3}), ("dagnn", {})]


def ticket(name, options, sparsity=0.5, layers=3):
    torch.manual_seed(0)
    model = mask_model(build_model(name, F, H, C, layers, **options), sparsity=sparsity, seed=0)
    if name == "gprgnn":  # learnt step weights, not the PPR initialisation
        with torch.no_grad():
            model.gamma.add_(torch.rand(model.gamma.shape) - 0.5)
    if options.get("norm") == "batch":  # running statistics other than the defaults
        model.train()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    return model.eval()


@pytest.mark.parametrize("name, options", VARIANTS)
@pytest.mark.parametrize("sparse_below", [0.0, 1.0])  # dense and CSR products
def test_an_exported_ticket_equals_the_masked_model_on_every_node(data, name, options,
                                                                  sparse_below):
    model = ticket(name, options)
    with torch.no_grad():
        expected = model(data.x, data.edge_index)
    assert expected.abs().max() > 1e-4 and expected.std(0).max() > 1e-6  # not a trivial output
    exported = ExportedGNN(export_model(model, data.x, data.edge_index),
                           sparse_below=sparse_below)
    assert torch.allclose(exported(data.x), expected, atol=1e-5, rtol=0)


def test_only_the_kept_weights_are_stored(data):
    model = ticket("gcn", {}, sparsity=0.95)
    spec = export_model(model, data.x, data.edge_index)
    kept = sum(int(m.sum()) for m in get_mask_group(model).masks().values())
    assert sum(w["values"].numel() for w in spec["weights"].values()) == kept
    assert all(w["col"].dtype == torch.int32 for w in spec["weights"].values())


def test_sparse_trained_and_dense_models_export_too(data):
    torch.manual_seed(1)
    trained = sparsify(build_model("appnp", F, H, C, 5), sparsity=0.8, distribution="erk",
                       seed=1)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.1)  # trained values, not the initial ones (pruned entries stay 0)
    dense = build_model("gcnii", F, H, C, 3)
    for model in (trained.eval(), dense.eval()):
        with torch.no_grad():
            expected = model(data.x, data.edge_index)
        exported = ExportedGNN(export_model(model, data.x, data.edge_index))
        assert torch.allclose(exported(data.x), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("degree", ["in", "out"])  # pruned edges: an asymmetric graph
def test_pruned_edges_are_removed_from_the_stored_graph(data, degree):
    model = ticket("gcn", {"degree": degree})
    e = data.edge_index.size(1)
    weight = torch.ones(e)
    weight[torch.randperm(e, generator=torch.Generator().manual_seed(0))[: e // 2]] = 0.0
    spec = export_model(model, data.x, data.edge_index, weight)
    assert spec["adjacency"]["col"].numel() == int(weight.sum()) + N  # kept edges + self-loops
    with torch.no_grad():
        expected = model(data.x, data.edge_index, weight)
    assert torch.allclose(ExportedGNN(spec)(data.x), expected, atol=1e-5, rtol=0)


def test_backbones_without_export_steps_are_refused(data):
    assert set(exportable_models()) == {"gcn", "gcnii", "appnp", "sgc", "gprgnn", "dagnn"}
    for name in sorted(set(MODELS) - set(exportable_models())):
        with pytest.raises(UserError, match=rf"model '{name}' cannot be exported; allowed: "):
            export_model(build_model(name, F, H, C, 2), data.x, data.edge_index)
    model = ticket("gcn", {})
    model.set_ghost_skip(0.5)
    with pytest.raises(UserError, match="ghost skips or branches"):
        export_model(model, data.x, data.edge_index)
    with pytest.raises(ValueError, match=r"x has shape \(3, 12\); allowed: \(200, 12\)"):
        ExportedGNN(export_model(ticket("sgc", {}), data.x, data.edge_index))(data.x[:3])


def test_the_runtime_runs_with_pytorch_alone(data, tmp_path):
    model = ticket("gcnii", {"norm": "layer"})
    path = save_export(export_model(model, data.x, data.edge_index), tmp_path / "m.gnn")
    torch.save(data.x, tmp_path / "x.pt")
    with torch.no_grad():
        torch.save(model(data.x, data.edge_index), tmp_path / "expected.pt")
    shutil.copy(runtime_module.__file__, tmp_path / "runtime.py")
    code = ("import sys, torch\nfrom runtime import load\n"
            "out = load('m.gnn')(torch.load('x.pt'))\n"
            "assert torch.allclose(out, torch.load('expected.pt'), atol=1e-5, rtol=0)\n"
            "assert not any(m.startswith('gnnmask') for m in sys.modules), 'gnnmask imported'\n"
            "print('ok')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
    assert torch.allclose(load(path)(data.x), torch.load(tmp_path / "expected.pt"), atol=1e-5)


def test_cli_exports_a_runs_ticket_and_refuses_in_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "csbm", "--model", "appnp", "--layers", "3", "--hidden",
                 "8", "--method", "ugt", "--sparsity", "0.9", "--epochs", "3", "--seeds", "0",
                 "--device", "cpu", "--quiet", "--out", str(run), "--save-ticket",
                 str(tmp_path / "t.ticket")]) == 0
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(tmp_path / "m.gnn"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["model"] == "appnp" and row["max_abs_diff"] <= 1e-5
    assert Path(row["path"]).stat().st_size == row["file_bytes"] > 0
    data = load_dataset("csbm", seed=0)
    assert load(row["path"])(data.x).shape == (data.num_nodes, data.num_classes)

    assert main(["train", "--dataset", "csbm", "--model", "gat", "--hidden", "8", "--method",
                 "ugt", "--epochs", "2", "--seeds", "0", "--device", "cpu", "--quiet", "--out",
                 str(tmp_path / "gat"), "--save-ticket", str(tmp_path / "gat.ticket")]) == 0
    capsys.readouterr()
    for argv, fragment in (
            ([str(tmp_path / "gat.ticket"), "--dataset", "csbm"],
             "model 'gat' cannot be exported; allowed: appnp, dagnn, gcn, gcnii, gprgnn, sgc"),
            ([str(tmp_path / "nothing")], "cannot read ticket"),
            ([str(tmp_path / "run" / "seed_0.json")], "is not a gnnmask ticket"),
            ([str(tmp_path / "run"), "--seed", "7"], "has no seed 7; allowed: 0"),
    ):
        code = main(["export", *argv, "--out", str(tmp_path / "no.gnn")])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and fragment in err, err
    assert not (tmp_path / "no.gnn").exists()


@pytest.mark.parametrize("method, flags", [
    ("dense", []),
    ("ugs", ["--sparsity", "0.5", "--edge-sparsity", "0.3"]),  # a graph ticket
])
def test_train_exports_each_seeds_final_model_with_its_graph(tmp_path, capsys, method, flags):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "csbm", "--hidden", "8", "--method", method, *flags,
                 "--epochs", "4", "--seeds", "0,1", "--device", "cpu", "--quiet",
                 "--layer-metrics", "none", "--out", str(run),
                 "--export", str(tmp_path / "m.gnn")]) == 0
    for seed in (0, 1):
        data = load_dataset("csbm", seed=seed)  # the generated graph follows the seed
        full = data.edge_index.size(1) + data.num_nodes
        record = json.loads((run / f"seed_{seed}.json").read_text())
        assert record["export"] == str(tmp_path / f"m.seed{seed}.gnn")
        model = load(record["export"])
        stored = model.adj._nnz()
        assert stored == full if method == "dense" else stored < full  # pruned edges gone
        pred = model(data.x).argmax(-1)
        test = (pred[data.test_mask] == data.y[data.test_mask]).float().mean().item()
        assert test == pytest.approx(record["test_acc"], abs=1e-6)
    capsys.readouterr()
    code = main(["train", "--dataset", "csbm", "--model", "gat", "--epochs", "1", "--device",
                 "cpu", "--quiet", "--out", str(tmp_path / "gat"), "--export",
                 str(tmp_path / "g.gnn")])
    err = capsys.readouterr().err
    assert code == 2 and "--export: model 'gat' cannot be exported" in err
    assert not (tmp_path / "gat").exists()


def test_a_graph_tickets_evaluation_and_export_run_on_its_kept_edges(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "csbm", "--hidden", "8", "--method", "ugs",
                 "--sparsity", "0.5", "--edge-sparsity", "0.3", "--epochs", "4", "--seeds",
                 "0", "--device", "cpu", "--quiet", "--layer-metrics", "none", "--out",
                 str(run), "--save-ticket", str(tmp_path / "g.ticket")]) == 0
    record = json.loads((run / "seed_0.json").read_text())
    capsys.readouterr()
    assert main(["evaluate", "--ticket", str(tmp_path / "g.ticket"), "--dataset", "csbm",
                 "--evaluations", "none", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_acc"] == pytest.approx(
        record["test_acc"], abs=1e-6)
    assert main(["export", str(run), "--out", str(tmp_path / "g.gnn"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    data = load_dataset("csbm", seed=0)
    assert row["edges"] < data.edge_index.size(1) + data.num_nodes and row["max_abs_diff"] < 1e-5
    pred = load(row["path"])(data.x).argmax(-1)
    test = (pred[data.test_mask] == data.y[data.test_mask]).float().mean().item()
    assert test == pytest.approx(record["test_acc"], abs=1e-6)
