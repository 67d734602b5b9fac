"""Reports from records alone: Markdown, CSV numbers, valid PNGs; the metrics and demo CLI."""

import csv
import json
import math
import statistics
from pathlib import Path

import pytest

from gnnmask.cli import main
from gnnmask.experiments import report, sweep
from gnnmask.methods import METHODS
from gnnmask.train import RunConfig, write_json_atomic

TWO = ["dense", "ugt"] if "ugt" in METHODS else ["dense"]
PNG = b"\x89PNG\r\n\x1a\n"


def ensure_layers(folder: Path) -> None:
    """Give records written before the engine traced layers synthetic per-layer rows."""
    for path in folder.rglob("seed_*.json"):
        rec = json.loads(path.read_text())
        if rec.get("layers"):
            continue
        depth, seed = rec["config"]["layers"], rec["seed"]
        rec["layers"] = [{"layer": i, "name": "input" if i == 0 else f"convs.{i - 1}", "dim": 8,
                          "mad": 0.8 / (i + 1) + 0.01 * seed,
                          "dirichlet": 5.0 * math.exp(-i) + 0.1 * seed,
                          "effective_rank": 8.0 - i / (seed + 1)} for i in range(depth + 1)]
        write_json_atomic(path, rec)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "sw"
    sweep(RunConfig(hidden=8, epochs=3, device="cpu"), [1, 2], TWO, [0, 1], out)
    ensure_layers(out)
    return out, report(out)


def records_of(out: Path, method: str, depth: int) -> list[dict]:
    return [json.loads(p.read_text())
            for p in sorted((out / "cells" / method / f"L{depth}").glob("seed_*.json"))]


def assert_png(path: Path) -> None:
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 0 and img.shape[1] > 0


def test_sweep_report_files_and_plots(swept):
    out, paths = swept
    metrics = [k for k in json.loads(next(out.rglob("seed_*.json")).read_text())["layers"][0]
               if k not in ("layer", "name", "dim")]
    expected = {"report.md", "results.csv", "accuracy_vs_depth.png", "accuracy_vs_macs.png",
                *(f"layers_{m}.png" for m in metrics)}
    assert set(paths) == expected
    for name, path in paths.items():
        assert path == out / name and path.is_file()
        if name.endswith(".png"):
            assert_png(path)
    md = (out / "report.md").read_text()
    assert md.startswith("# gnnmask report: csbm / gcn")
    for text in ("width 8", "3 epochs", "seeds: 0, 1", "torch ", "| depth | " + " | ".join(TWO),
                 "| 1 | ", "| 2 | ", "](accuracy_vs_depth.png)", "](layers_mad.png)",
                 "Last-layer over-smoothing metrics", "](results.csv)", "## Inference cost",
                 "](accuracy_vs_macs.png)"):
        assert text in md, text
    # the sweep-wide sparsity is named for the mask method only
    assert "- methods: dense, ugt (sparsity 0.9)" in md


def test_results_csv_holds_the_means_of_the_records(swept):
    out, paths = swept
    with open(paths["results.csv"]) as f:
        rows = list(csv.DictReader(f))
    assert [(r["method"], int(r["depth"])) for r in rows] == [(m, d) for m in TWO for d in (1, 2)]
    for row in rows:
        recs = records_of(out, row["method"], int(row["depth"]))
        assert int(row["n_seeds"]) == len(recs) == 2
        test = [r["test_acc"] for r in recs]
        assert float(row["test_acc_mean"]) == pytest.approx(statistics.fmean(test), abs=1e-12)
        assert float(row["test_acc_std"]) == pytest.approx(statistics.stdev(test), abs=1e-12)
        assert float(row["val_acc_mean"]) == pytest.approx(
            statistics.fmean(r["val_acc"] for r in recs), abs=1e-12)
        for metric in ("mad", "dirichlet"):
            assert float(row[f"last_{metric}"]) == pytest.approx(
                statistics.fmean(r["layers"][-1][metric] for r in recs), rel=1e-9)
        if "achieved_sparsity" in recs[0]["method"]:
            assert float(row["achieved_weight_sparsity"]) == pytest.approx(
                statistics.fmean(r["method"]["achieved_sparsity"] for r in recs))
        for key in ("inference_macs", "dense_macs", "model_bytes", "dense_model_bytes"):
            assert int(row[key]) == round(statistics.fmean(r[key] for r in recs))
        if row["method"] == "ugt":  # a 90% ticket runs about a tenth of the weights
            assert int(row["transform_macs"]) < 0.2 * int(row["dense_macs"])
            assert int(row["model_bytes"]) * 32 == int(row["dense_model_bytes"])


def test_sparsity_sweep_report_has_one_row_per_sparsity_and_round(tmp_path):
    out = tmp_path / "sp"
    sweep(RunConfig(hidden=8, epochs=3, device="cpu", layer_metrics="none"), [2],
          ["dense", "random", "imp"], [0, 1], out, sparsities=[0.5, 0.8])
    paths = report(out)
    assert {"report.md", "results.csv", "accuracy_vs_sparsity_L2.png"} <= set(paths)
    assert_png(paths["accuracy_vs_sparsity_L2.png"])
    md = paths["report.md"].read_text()
    assert md.startswith("# gnnmask report: csbm / gcn sparsity sweep")
    assert "## Accuracy\n" not in md  # no per-seed table without the cell named
    table = md.split("## Test accuracy against sparsity, depth 2")[1].split("\n\n")[2]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in table.splitlines()[2:]}
    assert table.splitlines()[0].split("|")[1:-1] == [" weight sparsity ", " random ", " imp "]
    # the sweep's own sparsities (imp's intermediate rounds are in the plot and CSV)
    assert list(rows) == ["0.5", "0.8", "dense (no mask)"]
    for s in ("0.5", "0.8"):
        recs = [json.loads(p.read_text()) for p in (out / "cells/random/L2" / f"s{s}").glob(
            "seed_*.json")]
        accs = [r["test_acc"] for r in recs]
        assert rows[s][0].startswith(f"{statistics.fmean(accs):.4f}")
    imp = [json.loads(p.read_text()) for p in (out / "cells/imp/L2/s0.8").glob("seed_*.json")]
    at_half = [next(r["test_acc"] for r in rec["rounds"] if r["sparsity"] == 0.5) for rec in imp]
    assert rows["0.5"][1].startswith(f"{statistics.fmean(at_half):.4f}")  # one run, every row
    assert report(out, tmp_path / "elsewhere")["report.md"].read_text() == md


def test_graph_tickets_report_weight_and_edge_sparsity_apart(tmp_path):
    out = tmp_path / "ugs"
    sweep(RunConfig(hidden=8, epochs=2, device="cpu", layer_metrics="none"), [2], ["ugs"], [0],
          out, sparsities=[0.36])
    with open(report(out)["results.csv"]) as f:
        rows = list(csv.DictReader(f))
    rec = json.loads(next((out / "cells/ugs/L2/s0.36").glob("seed_*.json")).read_text())
    assert [float(r["weight_sparsity"]) for r in rows] == pytest.approx([0.2, 0.36])
    last = rows[-1]
    assert float(last["achieved_weight_sparsity"]) == pytest.approx(0.36, abs=0.01)
    assert float(last["edge_sparsity"]) == pytest.approx(rec["method"]["edge_sparsity"])
    assert float(rows[0]["edge_sparsity"]) == pytest.approx(rec["rounds"][0]["edge_sparsity"])
    assert rec["method"]["edge_sparsity"] > rec["rounds"][0]["edge_sparsity"] > 0


def test_report_of_a_train_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--epochs", "3", "--hidden", "8", "--layers", "3", "--seeds", "0,1",
                 "--device", "cpu", "--out", str(run), "--quiet"]) == 0
    ensure_layers(run)
    capsys.readouterr()
    assert main(["report", str(run)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[:2] == [str(run / "report.md"), str(run / "results.csv")]
    assert str(run / "layers_mad.png") in printed and "accuracy_vs_depth.png" not in str(printed)
    md = (run / "report.md").read_text()
    assert "x3 / dense" in md and "| mean ± std |" in md
    assert "Per-layer over-smoothing metrics" in md and "| 3 | logits | 4 |" in md
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert len(rows) == 1 and rows[0]["depth"] == "3" and rows[0]["n_seeds"] == "2"
    assert_png(run / "layers_dirichlet.png")

    # the per-layer table of one record
    assert main(["metrics", "--run", str(run / "seed_0.json")]) == 0
    table = capsys.readouterr().out
    assert "mad" in table and "hidden.1" in table
    assert main(["metrics", "--run", str(run / "seed_1.json"), "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and len(json.loads(lines[0])) == 4


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_report_on_missing_or_empty_folder_exits_2(tmp_path, capsys, make):
    folder = tmp_path / "nothing"
    if make == "empty":
        folder.mkdir()
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "nothing" in err


def test_metrics_bad_input_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for argv in (["metrics", "--run", str(bad)], ["metrics", "--run", str(tmp_path)],
                 ["metrics", "--run", str(tmp_path / "none.json")]):
        assert main(argv) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_metrics_of_a_ticket(tmp_path, capsys):
    import torch

    from gnnmask.masks import mask_model, save_ticket
    from gnnmask.models import build_model

    torch.manual_seed(3)
    model = mask_model(build_model("gcn", 64, 8, 4, 3), sparsity=0.5, rule="global", seed=3)
    ticket = save_ticket(tmp_path / "t.ticket", model)
    assert main(["metrics", "--ticket", str(ticket), "--dataset", "csbm", "--json"]) == 0
    out = capsys.readouterr().out
    rows = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert len(out.strip().splitlines()) == 1
    assert [r["layer"] for r in rows] == list(range(len(rows))) and len(rows) >= 3
    assert rows[0]["name"] == "input" and rows[0]["dim"] == 64 and "mad" in rows[-1]
    assert main(["metrics", "--ticket", str(ticket), "--dataset", "csbm"]) == 0
    assert "dirichlet" in capsys.readouterr().out
    assert main(["metrics", "--ticket", str(ticket)]) == 2
    assert "--dataset" in capsys.readouterr().err


def test_demo_quick(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "[plain: no normalisation, no residual] test accuracy" in text
    assert "[deep-recipe: norm pair, residual initial] test accuracy" in text
    assert f"reports: {out / 'plain' / 'report.md'}, {out / 'deep-recipe' / 'report.md'}" in text
    for name, norm in (("plain", "none"), ("deep-recipe", "pair")):
        assert (out / name / "report.md").is_file() and (out / name / "results.csv").is_file()
        assert_png(out / name / "accuracy_vs_depth.png")
        rows = list(csv.DictReader(open(out / name / "results.csv")))
        assert {r["method"] for r in rows} == set(TWO) and {r["depth"] for r in rows} == {"2", "4"}
        assert f"norm {norm}" in (out / name / "report.md").read_text()
