"""The reproduce registry: entries load and run, results are compact data, status is honest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gnnmask.errors import UserError
from gnnmask.reproduce import (
    DEFAULT_TOLERANCE,
    ENTRIES,
    _load,
    entry_config,
    load_result,
    result_of,
    status,
    write_result,
)
from gnnmask.train import train
from gnnmask.train.config import resolve_config

REPO = Path(__file__).resolve().parents[1]


def test_entries_name_their_paper_value_and_tolerance():
    assert len(ENTRIES) >= 14
    for name, e in ENTRIES.items():
        assert e.name == name and e.citation and e.where
        # a reported spread or the default, never a lax band
        assert 0 < e.published < 1 and 0 < e.tolerance <= 2 * DEFAULT_TOLERANCE
        assert e.cost_min > 0 and len(e.seeds) >= 3  # more where a recipe's spread needs them
        resolve_config(entry_config(e))  # every recipe is a valid configuration


def test_an_entry_describes_the_settings_it_runs_its_presets_included():
    from gnnmask.reproduce.report import entry_row

    for e in ENTRIES.values():
        config = entry_config(e)
        row = entry_row(e, REPO / "docs" / "results" / "reproduce")
        for key in ("dataset", "model", "layers", "method"):
            assert row[key] == e.setting(key) == getattr(config, key), (e.name, key)
    # gat-cora takes its model from --preset gat-paper, not the default gcn
    assert "cora gat 2 layers, dense" in ENTRIES["gat-cora"].summary()
    assert ENTRIES["gcnii-cora-64"].setting("layers") == 64


@pytest.mark.parametrize("name", list(ENTRIES))
def test_every_entry_runs_two_epochs_on_the_embedded_graph(name):
    # No entry can rot: its recipe trains (on the generated graph, 2 epochs).
    config = entry_config(ENTRIES[name], dataset="csbm", epochs=2, layer_metrics="none")
    record = train(config.replace(patience=0))
    assert record["status"] == "finished"
    rounds = record.get("rounds")  # a pruning run: every round trained its 2 epochs
    assert [r["epochs_run"] for r in rounds] == [2] * len(rounds) if rounds else \
        record["epochs_run"] == 2


def fake_records(entry, accs, status_="finished"):
    config = resolve_config(entry_config(entry)).to_dict()
    return [{"config": {**config, "seed": s}, "seed": s, "test_acc": a, "val_acc": a,
             "train_acc": 1.0, "best_epoch": 3, "nonzero_params": 10, "epoch_time_s": 0.01,
             "total_time_s": 1.0, "status": status_, "versions": {"torch": "x"},
             "inference_macs": 100 + s, "dense_macs": 200, "model_bytes": 3,
             "dense_model_bytes": 40, "history": [{"epoch": 0}]}
            for s, a in zip(entry.seeds, accs)]


def test_results_are_compact_and_status_compares_the_mean_with_the_tolerance(tmp_path):
    e = ENTRIES["gcn-cora"]
    assert status(e, load_result(e, tmp_path))["status"] == "not run"
    inside = e.published - e.tolerance + 0.001
    write_result(e, fake_records(e, [inside - 0.01, inside, inside + 0.01]), tmp_path)
    result = load_result(e, tmp_path)
    assert "history" not in result and result["versions"] == {"torch": "x"}
    assert not any("history" in s for s in result["seeds"])  # no per-epoch rows
    assert [s["seed"] for s in result["seeds"]] == [0, 1, 2]
    assert [s["inference_macs"] for s in result["seeds"]] == [100, 101, 102]  # cost kept
    assert {s["model_bytes"] for s in result["seeds"]} == {3}
    s = status(e, result)
    assert s["status"] == "reproduced" and s["seeds"] == 3
    assert s["measured"] == pytest.approx(inside) and s["std"] == pytest.approx(0.01)
    write_result(e, fake_records(e, [e.published - e.tolerance - 0.002] * 3), tmp_path)
    assert status(e, load_result(e, tmp_path))["status"] == "missed"
    write_result(e, fake_records(e, [0.1] * 3, "diverged"), tmp_path)
    assert status(e, load_result(e, tmp_path))["status"] == "not run"  # never averaged in


def test_a_result_run_with_other_settings_is_stale(tmp_path):
    e = ENTRIES["gcn-cora"]
    records = fake_records(e, [e.published] * 3)
    write_result(e, records, tmp_path)
    assert status(e, load_result(e, tmp_path))["status"] == "reproduced"
    for r in records:
        r["config"]["hidden"] = 32
    write_result(e, records, tmp_path)
    s = status(e, load_result(e, tmp_path))
    assert s["status"] == "not run" and s["stale"] == "hidden" and s["measured"] is None
    for r in records:  # a field the stored config lacks counts as its default
        r["config"]["hidden"] = e.settings["hidden"]
        del r["config"]["calibration_bins"]
    write_result(e, records, tmp_path)
    assert status(e, load_result(e, tmp_path))["status"] == "reproduced"


def test_what_a_resumed_run_ignores_does_not_make_a_result_stale(tmp_path):
    # `reproduce run` resumes from records that differ only in seed, device,
    # data root or per-epoch history (e.g. trained by `gnnmask train`, which
    # keeps the history); the result it writes from them must count.
    e = ENTRIES["gcn-cora"]
    records = fake_records(e, [e.published] * 3)
    for r in records:
        r["config"].update(history=True, device="cuda", data_root="/elsewhere")
    write_result(e, records, tmp_path)
    s = status(e, load_result(e, tmp_path))
    assert s["status"] == "reproduced" and "stale" not in s


def test_a_number_given_as_int_on_the_command_line_matches_the_entrys_float(tmp_path):
    # `--extra weight_gain=5` records 5, an entry's `weight_gain = 5.0` asks
    # 5.0: the resume check takes such records, so the result must count too
    e = ENTRIES["ugt-gain-gcn-cora-s50"]
    assert e.settings["extra"]["weight_gain"] == 5.0
    records = fake_records(e, [e.published] * 3)
    for r in records:
        r["config"]["extra"] = {**r["config"]["extra"], "weight_gain": 5}
    write_result(e, records, tmp_path)
    s = status(e, load_result(e, tmp_path))
    assert s["status"] == "reproduced" and "stale" not in s


def run_cli_on_records(records, tmp_path, monkeypatch, caplog):
    """`gnnmask reproduce run gcn-cora` where training writes ``records``."""
    import gnnmask.cli.reproduce as cli_reproduce
    from gnnmask.cli.main import parse

    def fake_runs(config, seeds, folder, **kwargs):
        folder.mkdir(parents=True)
        for r in records:
            (folder / f"seed_{r['seed']}.json").write_text(json.dumps(r))
        return {}

    monkeypatch.setattr(cli_reproduce, "run_seeds", fake_runs)
    args = parse(["reproduce", "run", "gcn-cora", "--out", str(tmp_path / "runs"),
                  "--results", str(tmp_path / "results")])
    with caplog.at_level("INFO", logger="gnnmask"):
        assert args.func(args) == 0


def test_run_names_the_stale_setting_instead_of_claiming_divergence(tmp_path, monkeypatch,
                                                                     caplog):
    e = ENTRIES["gcn-cora"]
    records = fake_records(e, [e.published] * 3)
    for r in records:  # finished, but another lr
        r["config"]["lr"] = 0.5
    run_cli_on_records(records, tmp_path, monkeypatch, caplog)
    assert "gcn-cora: its records were run with another lr than the entry asks" in caplog.text
    assert "no finished seed" not in caplog.text


def test_run_says_so_when_no_seed_finished(tmp_path, monkeypatch, caplog, capsys):
    e = ENTRIES["gcn-cora"]
    run_cli_on_records(fake_records(e, [0.1] * 3, "diverged"), tmp_path, monkeypatch, caplog)
    assert "gcn-cora: no finished seed to measure" in caplog.text
    assert "Logging error" not in capsys.readouterr().err


def test_a_node_result_from_before_select_and_tasks_counts_as_selected_by_val_acc(tmp_path):
    e = ENTRIES["gcn-cora"]
    records = fake_records(e, [e.published] * 3)
    for r in records:  # as stored before --select and --task existed
        for key in ("select", "task", "decoder", "hits_k", "readout", "link_loss"):
            del r["config"][key]
    write_result(e, records, tmp_path)
    assert status(e, load_result(e, tmp_path))["status"] == "reproduced"
    e_loss = ENTRIES["gcnii-cora-64"]  # an entry that selects otherwise stays stale
    records = fake_records(e_loss, [e_loss.published] * 3)
    for r in records:
        del r["config"]["select"]
    write_result(e_loss, records, tmp_path)
    assert status(e_loss, load_result(e_loss, tmp_path))["stale"] == "select"


def test_every_committed_result_was_run_with_its_entrys_current_settings():
    """A committed result that no longer matches its entry is shown as "not
    run" in docs/results/reproduce.md: re-run it (or delete it) with the
    change that made it stale."""
    folder = REPO / "docs" / "results" / "reproduce"
    stale = {name: s["stale"] for name, e in ENTRIES.items()
             if (result := load_result(e, folder)) is not None
             and (s := status(e, result)).get("stale")}
    assert not stale, f"stale committed results (entry: setting): {stale}"


def test_an_entry_can_be_one_round_of_a_pruning_run(tmp_path):
    w59, w87 = ENTRIES["ugs-cora-w59"], ENTRIES["ugs-cora-w87"]
    assert w59.folder == w87.folder == "ugs-cora"  # one run gives both points
    records = fake_records(w87, [0.79, 0.80, 0.81])
    for r in records:
        r["rounds"] = [{"round": k, "sparsity": s, "test_acc": 0.5 + k / 100,
                        "achieved_sparsity": s, "edge_sparsity": 1 - 0.95 ** (k + 1)}
                       for k, s in enumerate((0.2, 0.36, 0.488, 0.5904))]
    row = result_of(w59, records)["seeds"][0]
    assert row["test_acc"] == pytest.approx(0.53) and row["round"] == 3
    assert row["edge_sparsity"] == pytest.approx(1 - 0.95 ** 4)
    with pytest.raises(UserError, match="has no round at sparsity 0.5904"):
        result_of(w59, [{**records[0], "rounds": records[0]["rounds"][:3]}])


def test_entries_sharing_a_run_must_share_its_settings():
    text = """
[papers.p]
short = "P"
citation = "P. Paper."
[a]
paper = "p"
where = "Table 1"
published = 0.5
run = "shared"
dataset = "cora"
[b]
paper = "p"
where = "Table 1"
published = 0.6
run = "shared"
dataset = "citeseer"
"""
    with pytest.raises(ValueError, match="'a' and 'b' share the run 'shared' but not its"):
        _load(text)
    assert list(_load(text.replace('"citeseer"', '"cora"'))) == ["a", "b"]


def cli(*argv):
    return subprocess.run([sys.executable, "-m", "gnnmask", "reproduce", *argv],
                          capture_output=True, text=True, timeout=300)


def test_cli_lists_runs_and_reports(tmp_path):
    rows = [json.loads(line) for line in cli("list", "--json", "--results",
                                             str(tmp_path)).stdout.splitlines()]
    assert len(rows) == len(ENTRIES)
    for row in rows:
        assert {"name", "paper", "published", "tolerance", "measured", "std", "seeds",
                "status"} <= set(row) and row["status"] == "not run"
    bad = cli("run", "nope")
    assert bad.returncode == 2 and "unknown reproduce entry 'nope'; allowed: gcn-cora" in bad.stderr
    assert cli("run").returncode == 2
    report = cli("report", "--results", str(tmp_path))
    assert "| gcn-cora | Kipf & Welling 2017 | Table 2 | 0.815 +- 0.015 | not run | - |" \
        in report.stdout


def test_report_draws_one_plot_per_paper_figure(tmp_path):
    from gnnmask.reproduce.report import entry_row, figure_groups, write_report

    results = tmp_path / "results"
    e = ENTRIES["ugs-cora-w59"]
    records = fake_records(e, [0.8, 0.81, 0.82])
    for r in records:
        r["rounds"] = [{"round": 0, "sparsity": 0.5904, "test_acc": r["test_acc"]}]
    write_result(e, records, results)
    rows = [entry_row(x, results) for x in ENTRIES.values()]
    ugs = figure_groups(rows)[("Chen et al. 2021 (UGS)", "Figure 1")]
    assert [r["name"] for r in ugs] == [n for n in ENTRIES if n.startswith("ugs-")]
    paths = write_report(results, tmp_path / "out" / "table.md")
    md = paths[0].read_text()
    plot = tmp_path / "out" / "table_chen-et-al-2021-ugs-figure-1.png"
    assert plot in paths and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"]({plot.name})" in md and "| ugs-cora-w59 |" in md
    assert "0.810 +- 0.010 (3)" in md
    # every figure of two or more entries, and only those, is drawn
    drawn = {p.name for p in paths[1:]}
    assert len(drawn) == sum(len(g) > 1 for g in figure_groups(rows).values())


def test_a_smoke_run_trains_but_stores_no_result(tmp_path, data_root):
    smoke = cli("run", "gcn-cora", "--epochs", "2", "--out", str(tmp_path / "runs"),
                "--results", str(tmp_path / "results"), "--data-root", str(data_root))
    assert smoke.returncode == 0, smoke.stderr
    assert "smoke run of 2 epochs" in smoke.stdout
    assert sorted(p.name for p in (tmp_path / "runs" / "gcn-cora").iterdir()) == [
        "config.json", "seed_0.json", "seed_1.json", "seed_2.json", "summary.json"]
    assert not (tmp_path / "results").exists()


def test_an_entry_whose_settings_changed_is_trained_again(tmp_path, data_root):
    args = ["run", "tricks-sgc-cora-2", "--out", str(tmp_path / "runs"), "--results",
            str(tmp_path / "results"), "--data-root", str(data_root)]
    first = cli(*args, "--epochs", "1")
    assert first.returncode == 0, first.stderr
    again = cli(*args, "--epochs", "2")  # as if the entry's epochs had changed
    assert again.returncode == 0, again.stderr
    assert "used other settings (epochs); training it again" in again.stderr
    record = json.loads((tmp_path / "runs" / "tricks-sgc-cora-2" / "seed_0.json").read_text())
    assert record["config"]["epochs"] == 2
