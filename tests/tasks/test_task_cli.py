"""The tasks from the command line: train, sweep (resumably) and report."""

import csv
import json


def test_train_link_prediction_on_cora(cli, data_root, tmp_path):
    code, out, err = cli(
        "train", "--task", "link", "--dataset", "cora", "--data-root", str(data_root),
        "--method", "ugt", "--sparsity", "0.5", "--decoder", "cosine", "--hidden", "16",
        "--epochs", "3", "--json", "--out", str(tmp_path / "run"))
    assert code == 0, err
    summary = json.loads(out)
    assert summary["metric"] == "auc" and 0.0 <= summary["test_auc"] <= 1.0
    record = json.loads((tmp_path / "run" / "seed_0.json").read_text())
    assert record["config"]["task"] == "link" and "test_hits@20" in record


def test_graph_sweep_resumes_and_reports(cli, tmp_path):
    args = ["sweep", "--task", "graph", "--depths", "1,2", "--methods", "dense,ugt",
            "--sparsities", "0.5", "--epochs", "2", "--hidden", "8", "--layer-metrics", "mad",
            "--quiet", "--out", str(tmp_path / "s")]
    code, out, err = cli(*args)
    assert code == 0, err
    cells = sorted((tmp_path / "s" / "cells").glob("**/seed_0.json"))
    assert len(cells) == 4
    record = json.loads(cells[0].read_text())
    assert record["config"]["dataset"] == "sbm-graphs" and record["metric"] == "acc"
    stamps = {p: p.stat().st_mtime_ns for p in cells}
    code, _, err = cli(*args)  # finished cells are not trained again
    assert code == 0, err
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    code, _, err = cli("report", str(tmp_path / "s"), "--out", str(tmp_path / "r"))
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "r" / "results.csv").open()))
    assert "test_acc_mean" in rows[0] and len(rows) == 4
    assert "## Test accuracy" in (tmp_path / "r" / "report.md").read_text()


def test_link_sweep_report_names_the_auc(cli, tmp_path):
    code, _, err = cli("sweep", "--task", "link", "--depths", "2", "--methods",
                           "dense", "--epochs", "2", "--hidden", "8", "--layer-metrics", "none",
                           "--quiet", "--out", str(tmp_path / "s"))
    assert code == 0, err
    code, _, err = cli("report", str(tmp_path / "s"), "--out", str(tmp_path / "r"))
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "r" / "results.csv").open()))
    assert "test_auc_mean" in rows[0] and "test_acc_mean" not in rows[0]
    assert "## Test ROC-AUC" in (tmp_path / "r" / "report.md").read_text()


def test_link_ticket_with_an_mlp_decoder_is_refused(cli, tmp_path):
    code, _, err = cli("train", "--task", "link", "--method", "ugt",
                           "--decoder", "mlp", "--save-ticket", str(tmp_path / "t.pt"),
                           "--out", str(tmp_path / "r"))
    assert code == 2 and "the mlp decoder is not part of it" in err


def test_link_and_graph_tickets_load_and_are_not_evaluated_as_node_tickets(cli, tmp_path):
    import torch

    from gnnmask.masks import get_mask_group, load_ticket

    for task, extra in (("link", ["--decoder", "cosine"]), ("graph", [])):
        ticket = tmp_path / f"{task}.ticket"
        code, _, err = cli("train", "--task", task, "--method", "ugt",
                               "--sparsity", "0.5", "--epochs", "2", "--hidden", "8",
                               "--layer-metrics", "none", *extra, "--save-ticket", str(ticket),
                               "--out", str(tmp_path / task), "--quiet")
        assert code == 0, err
        record = json.loads((tmp_path / task / "seed_0.json").read_text())
        assert record["ticket"] == str(ticket)
        model = load_ticket(ticket)  # the masks drop into a rebuilt backbone
        masks = get_mask_group(model).masks()
        assert masks and all(m.dtype == torch.bool for m in masks.values())
        code, _, err = cli("evaluate", "--ticket", str(ticket), "--dataset",
                               record["config"]["dataset"])
        assert code == 2 and f"was trained for --task {task}" in err
