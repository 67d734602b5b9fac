"""Plain mistakes, as a new user makes them: exit 2, one line, nothing half-written."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from gnnmask.cli import main
from gnnmask.errors import UserError

TINY = ["--epochs", "3", "--hidden", "8", "--layer-metrics", "none"]


def assert_one_line_error(code, err, fragment):
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("gnnmask: error:"), err
    assert fragment in err, err
    assert "Traceback" not in err


def tree(path: Path) -> dict:
    """Every file under ``path`` with its bytes (the folder 'exactly as before')."""
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


def read_only_dir() -> Path | None:
    """A folder this process cannot write into (root ignores chmod; a read-only
    mount works for everyone), or ``None``."""
    for candidate in ("/proc/sys", "/sys/kernel"):
        path = Path(candidate)
        if path.is_dir() and not os.access(path, os.W_OK):
            return path
    return None


@pytest.fixture
def corrupt_root(tmp_path, data_root):
    """A data root holding Cora with one truncated and one garbage raw file."""
    root = tmp_path / "data"
    shutil.copytree(data_root / "planetoid" / "Cora", root / "planetoid" / "Cora")
    raw = root / "planetoid" / "Cora" / "raw"
    allx = raw / "ind.cora.allx"
    allx.write_bytes(allx.read_bytes()[:1000])
    return root


# row 1: corrupt dataset files
def test_corrupt_dataset_files_are_named_and_nothing_is_written(cli, tmp_path, corrupt_root):
    out = tmp_path / "o" / "x"
    code, _, err = cli("train", "--dataset", "cora", "--data-root", corrupt_root,
                           "--out", out, *TINY)
    assert_one_line_error(code, err, "ind.cora.allx")
    assert not out.exists()
    code, stdout, _ = cli("datasets", "--data-root", corrupt_root, "--check")
    assert code == 2
    assert "ind.cora.allx: unreadable" in stdout
    cora = next(line for line in stdout.splitlines() if line.startswith("cora "))
    assert cora.split()[-1] == "no"
    (corrupt_root / "planetoid" / "Cora" / "raw" / "ind.cora.graph").write_bytes(b"\x00junk")
    code, stdout, _ = cli("datasets", "--data-root", corrupt_root, "--check")
    assert "ind.cora.graph: unreadable" in stdout


def test_datasets_check_verifies_the_manifest(cli, data_root):
    code, stdout, _ = cli("datasets", "--data-root", data_root, "--check", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(stdout)}
    assert rows["cora"]["available"] and rows["cora"]["problems"] == []


# row 2 and 12: --out a file, --data-root a file, a read-only --out
def test_out_and_data_root_that_are_files(cli, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    code, _, err = cli("train", "--out", f, *TINY)
    assert_one_line_error(code, err, "is a file; allowed: a folder")
    code, _, err = cli("train", "--dataset", "cora", "--data-root", f, "--out",
                           tmp_path / "o", *TINY)
    assert_one_line_error(code, err, "is a file, not a folder")
    assert f.read_text() == "x" and not (tmp_path / "o").exists()


def test_read_only_out(cli):
    ro = read_only_dir()
    if ro is None:
        pytest.skip("no read-only folder on this machine")
    code, _, err = cli("train", "--out", ro / "run", *TINY)
    assert_one_line_error(code, err, "is not writable")


# row 3: report on a folder it cannot write into, and --out
def test_report_out_elsewhere(cli, tmp_path):
    run = tmp_path / "run"
    assert cli("train", "--out", run, "--quiet", *TINY)[0] == 0
    before = tree(run)
    code, out, err = cli("report", run, "--out", tmp_path / "rep")
    assert code == 0, err
    assert (tmp_path / "rep" / "report.md").is_file() and tree(run) == before
    ro = read_only_dir()
    if ro is not None:
        code, _, err = cli("report", run, "--out", ro / "rep")
        assert_one_line_error(code, err, "is not writable")


# rows 4, 5: --save-ticket paths and methods, refused before training
def test_save_ticket_paths(cli, tmp_path):
    out = tmp_path / "run"
    (tmp_path / "adir").mkdir()
    code, _, err = cli("train", "--method", "ugt", "--save-ticket",
                           tmp_path / "adir", "--out", out, *TINY)
    assert_one_line_error(code, err, "--save-ticket")
    assert "is a folder" in err and not out.exists()
    code, _, err = cli("train", "--method", "dense", "--save-ticket",
                           tmp_path / "t.ticket", "--out", out, *TINY)
    assert_one_line_error(code, err, "needs a masked method")
    assert not out.exists()
    # a missing folder is created; the record names the ticket
    ticket = tmp_path / "new" / "deeper" / "t.ticket"
    code, _, err = cli("train", "--method", "ugt", "--save-ticket", ticket,
                           "--out", out, "--quiet", *TINY)
    assert code == 0, err
    assert json.loads((out / "seed_0.json").read_text())["ticket"] == str(ticket)
    assert ticket.is_file()


# row 6: a failed start leaves nothing that blocks the corrected command
def test_failed_start_does_not_block_the_corrected_command(cli, tmp_path):
    out = tmp_path / "o" / "x"
    code, _, err = cli("train", "--dataset", "coraa", "--out", out, *TINY)
    assert_one_line_error(code, err, "unknown dataset 'coraa'")
    assert not out.exists()
    code, _, err = cli("train", "--dataset", "cora", "--data-root",
                           tmp_path / "nowhere", "--out", out, *TINY)
    assert_one_line_error(code, err, "does not exist")
    out.mkdir(parents=True)
    (out / "config.json").write_text('{"dataset": "coraa"}')  # left by an older version
    code, _, err = cli("train", "--out", out, "--quiet", *TINY)
    assert code == 0, err
    sweep_out = tmp_path / "s"
    code, _, err = cli("sweep", "--dataset", "coraa", "--depths", "2",
                           "--out", sweep_out, *TINY)
    assert_one_line_error(code, err, "unknown dataset 'coraa'")
    assert not (sweep_out / "sweep.json").exists()
    code, _, err = cli("sweep", "--depths", "2", "--out", sweep_out, "--quiet",
                           "--no-report", *TINY)
    assert code == 0, err


# row 7: the dataset's spelling does not make a different config
def test_dataset_name_is_normalised(cli, tmp_path):
    out = tmp_path / "r"
    assert cli("train", "--dataset", "CSBM", "--out", out, "--quiet", *TINY)[0] == 0
    assert json.loads((out / "config.json").read_text())["dataset"] == "csbm"
    code, stdout, err = cli("train", "--dataset", "csbm", "--out", out, *TINY)
    assert code == 0, err
    assert "seed(s) 0 finished earlier, skipped" in stdout


# row 8: a summary is not a seed record
def test_metrics_of_a_summary_file(cli, tmp_path):
    out = tmp_path / "r"
    assert cli("train", "--out", out, "--quiet", *TINY)[0] == 0
    code, _, err = cli("metrics", "--run", out / "summary.json")
    assert_one_line_error(code, err, "is not a seed record")
    (out / "broken.json").write_text('{"config": {}, "test')
    code, _, err = cli("metrics", "--run", out / "broken.json")
    assert_one_line_error(code, err, "is not a seed record")


# row 9: report names a truncated cell record and reports the rest
def test_report_names_unreadable_cells(cli, tmp_path):
    out = tmp_path / "s"
    code, _, err = cli("sweep", "--depths", "2,3", "--out", out, "--quiet",
                           "--no-report", "--epochs", "3", "--hidden", "8")
    assert code == 0, err
    cell = out / "cells" / "dense" / "L3" / "seed_0.json"
    cell.write_text(cell.read_text()[:200])
    code, stdout, err = cli("report", out)
    assert code == 0, err
    assert str(cell) in err and str(cell) not in stdout  # a warning: on stderr
    assert str(cell) in (out / "report.md").read_text()
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 2  # header + the readable depth


# row 11: undefined metric columns are left out with a note
def test_metrics_of_a_ticket_leave_out_undefined_columns(cli, tmp_path):
    ticket = tmp_path / "t.ticket"
    code, _, err = cli("train", "--method", "ugt", "--save-ticket", ticket,
                           "--out", tmp_path / "r", "--quiet", *TINY)
    assert code == 0, err
    # a ticket on another dataset is refused by the name it was found on (issue 24)
    code, _, err = cli("evaluate", "--ticket", ticket, "--dataset", "csbm-arxiv")
    assert_one_line_error(code, err, "csbm")
    assert "shape" not in err
    code, stdout, err = cli("metrics", "--ticket", ticket, "--dataset", "csbm")
    assert code == 0, err
    assert "nan" not in stdout
    code, stdout, err = cli("evaluate", "--ticket", ticket, "--dataset", "csbm",
                                "--json")
    assert code == 0, err
    row = json.loads(stdout)
    assert 0 <= row["test_acc"] <= 1 and row["sparsity"] == pytest.approx(0.9)
    calibration = row["evaluation"]["calibration"]
    assert calibration["temperature"] > 0 and 0 <= calibration["ece_scaled"] <= 1


# row 13: a sweep checks every cell before writing anything
def test_sweep_checks_before_writing(cli, tmp_path):
    import torch

    out = tmp_path / "s"
    if not torch.cuda.is_available():
        code, _, err = cli("sweep", "--device", "cuda", "--depths", "2",
                               "--out", out, *TINY)
        assert_one_line_error(code, err, "CUDA is not available")
    code, _, err = cli("sweep", "--methods", "dense,magic", "--depths", "2",
                           "--out", out, *TINY)
    assert_one_line_error(code, err, "unknown method 'magic'")
    assert not out.exists()


# row 14: progress in a log that is not a terminal, and what a resumed run skipped
def test_progress_lines_when_stdout_is_not_a_terminal(cli, tmp_path):
    out = tmp_path / "r"
    log = tmp_path / "train.log"
    code, stdout, err = cli("train", "--epochs", "20", "--hidden", "8",
                                "--seeds", "0,1", "--out", out, "--log-file", log,
                                "--layer-metrics", "none")
    assert code == 0, err
    progress = [line for line in stdout.splitlines() if "epoch" in line and "/20" in line]
    assert len(progress) == 2 * 10  # every 2 epochs (10%), two seeds
    assert sum("seed 0: test" in line or "seed 1: test" in line
               for line in stdout.splitlines()) == 2
    assert "epoch 20/20" in log.read_text()
    code, stdout, _ = cli("train", "--epochs", "20", "--hidden", "8",
                              "--seeds", "0-2", "--out", out, "--layer-metrics", "none",
                              "--log-every", "0")
    assert code == 0 and "seed(s) 0,1 finished earlier, skipped" in stdout
    assert not any("/20" in line for line in stdout.splitlines())


# row 15: save_ticket into a missing folder, from Python
def test_save_ticket_into_a_missing_folder_is_a_user_error(tmp_path):
    from torch import nn

    from gnnmask.masks import mask_model, save_ticket

    model = mask_model(nn.Linear(4, 4))
    with pytest.raises(UserError, match=r"cannot write ticket .*missing/x.ticket"):
        save_ticket(tmp_path / "missing" / "x.ticket", model)
    with pytest.raises(UserError, match="cannot be imported"):
        save_ticket(tmp_path / "y.ticket", model, builder="no_such_module:build")
    assert list(tmp_path.iterdir()) == []


# --overwrite and --resume
def test_overwrite_says_what_it_removes_and_resume_needs_a_run(cli, tmp_path):
    out = tmp_path / "r"
    assert cli("train", "--out", out, "--quiet", *TINY)[0] == 0
    code, _, err = cli("train", "--out", out, "--lr", "0.02", *TINY)
    assert_one_line_error(code, err, "use --overwrite")
    assert cli("report", out)[0] == 0
    assert (out / "report.md").is_file() and (out / "results.csv").is_file()
    code, stdout, err = cli("train", "--out", out, "--lr", "0.02", "--overwrite",
                                *TINY)
    assert code == 0, err
    # said on stderr (a warning), and the old report goes with the records it described
    assert "removing 4 file(s): seed_0.json, summary.json, report.md, results.csv" in err
    assert not (out / "report.md").exists() and not (out / "results.csv").exists()
    assert json.loads((out / "config.json").read_text())["lr"] == 0.02
    code, _, err = cli("train", "--out", tmp_path / "empty", "--resume", *TINY)
    assert_one_line_error(code, err, "nothing to resume")


# --config round trip and --dry-run
def test_config_file_round_trip_is_bit_identical(cli, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    args = ["--method", "ugt", "--epochs", "6", "--hidden", "8", "--seeds", "3",
            "--label-smoothing", "0.1", "--extra", "mask_scale=none", "--quiet"]
    assert cli("train", "--out", a, *args)[0] == 0
    code, _, err = cli("train", "--config", a / "config.json", "--out", b,
                           "--quiet")
    assert code == 0, err
    ra, rb = (json.loads((d / "seed_3.json").read_text()) for d in (a, b))
    strip = lambda h: [{k: v for k, v in r.items() if k != "step_s"} for r in h]  # noqa: E731
    assert strip(ra["history"]) == strip(rb["history"]) and ra["config"] == rb["config"]
    toml = tmp_path / "run.toml"
    toml.write_text('method = "ugt"\nepochs = 4\nhidden = 8\nseeds = [0, 1]\n'
                    '[extra]\nmask_scale = "keep"\n')
    code, stdout, err = cli("train", "--config", toml, "--epochs", "5",
                                "--dry-run", "--json", "--out", tmp_path / "c")
    assert code == 0, err
    shown = json.loads(stdout)
    assert shown["config"]["epochs"] == 5 and shown["seeds"] == [0, 1]  # the flag wins
    assert shown["config"]["extra"] == {"mask_scale": "keep"}
    assert not (tmp_path / "c").exists()
    toml.write_text("epoch = 4\n")
    code, _, err = cli("train", "--config", toml)
    assert_one_line_error(code, err, "unknown key 'epoch'")


def test_sweep_dry_run_lists_cells(cli, tmp_path):
    code, stdout, err = cli("sweep", "--methods", "dense,ugt", "--depths", "2,4",
                                "--sparsity", "0.5", "--dry-run", "--json",
                                "--out", tmp_path / "s")
    assert code == 0, err
    cells = json.loads(stdout)["cells"]
    assert len(cells) == 4 and not any(c["finished"] for c in cells)
    by_name = {c["cell"]: c["config"] for c in cells}
    assert by_name["ugt/L4/seed_0"]["sparsity"] == 0.5
    assert by_name["dense/L4/seed_0"]["sparsity"] is None  # dense reads no sparsity
    assert not (tmp_path / "s").exists()


def test_methods_and_list_describe_every_choice(cli, capsys):
    code, stdout, _ = cli("methods")
    assert code == 0 and "ugt: Untrained GNN tickets" in stdout
    assert "--extra mask_scale=...:" in stdout
    code, stdout, _ = cli("list", "rules")
    assert code == 0 and "global" in stdout and "fixed" in stdout
    code, stdout, _ = cli("list", "models")  # a model's own default beside what it reads
    assert code == 0 and "Reads bias, dropout (default 0.0)." in stdout
    assert "Reads dropout, activation, bias, alpha." in stdout  # appnp: none of its own
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    assert "(default: 0.01)" in help_text and "{adam,adamw,amsgrad,sgd}" in help_text
    assert "(default: the method's)" in help_text
    assert "(default: the model's, else the method's)" in " ".join(help_text.split())


# issue 24: a diverged run is a result; strict types; every refusal before any write
def test_diverging_seeds_are_written_and_exit_3(cli, tmp_path):
    out = tmp_path / "d"
    code, stdout, err = cli("train", "--layers", "2", "--hidden", "8", "--epochs",
                                "2", "--seeds", "0,1", "--lr", "1e38", "--out", out)
    assert code == 3, err
    assert "x contains NaN" not in err and "Traceback" not in err
    records = [json.loads((out / f"seed_{s}.json").read_text()) for s in (0, 1)]
    assert [r["status"] for r in records] == ["diverged", "diverged"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["diverged_seeds"] == [0, 1] and summary["seeds"] == []
    assert "diverged: seed(s) 0, 1" in stdout
    code, stdout, _ = cli("train", "--layers", "2", "--hidden", "8", "--epochs",
                              "2", "--lr", "1e38", "--out", tmp_path / "j", "--json")
    assert code == 3 and json.loads(stdout)["diverged_seeds"] == [0]


def test_a_sweep_finishes_the_cells_beside_a_diverged_one(cli, tmp_path):
    out = tmp_path / "s"
    code, stdout, err = cli("sweep", "--methods", "dense,ugt", "--depths", "2",
                                "--lr", "1e38", "--out", out, "--quiet", *TINY)
    assert code == 3, err
    cells = {m: json.loads((out / "cells" / m / "L2" / "seed_0.json").read_text())
             for m in ("dense", "ugt")}
    assert cells["dense"]["status"] == "diverged" and cells["ugt"]["status"] == "finished"
    report = (out / "report.md").read_text()
    assert "| 2 | diverged (1/1) |" in report and "## Diverged runs" in report
    assert "n_diverged" in (out / "results.csv").read_text().splitlines()[0]


@pytest.mark.parametrize("line, fragment", [
    ("layers = true", "layers = true is invalid; allowed: an integer"),
    ("epochs = true", "epochs = true is invalid; allowed: an integer"),
    ("lr = true", "lr = true is invalid; allowed: a number"),
    ("amp = 1", "amp = 1 is invalid"),
    ("seeds = true", "seeds = true is invalid"),
])
def test_config_file_types_are_strict_and_named(cli, tmp_path, line, fragment):
    toml = tmp_path / "c.toml"
    toml.write_text(line + "\n")
    code, _, err = cli("train", "--config", toml, "--out", tmp_path / "o")
    assert_one_line_error(code, err, f"--config '{toml}': {fragment}")
    assert not (tmp_path / "o").exists()


def test_config_file_takes_a_single_seed(cli, tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("seeds = 3\n")
    code, stdout, err = cli("train", "--config", toml, "--dry-run", "--json")
    assert code == 0, err
    assert json.loads(stdout)["seeds"] == [3]


@pytest.mark.parametrize("argv, fragment", [
    (["--lr", "inf"], "--lr inf is invalid; allowed: a finite number"),
    (["--dropout", "nan"], "--dropout nan"),
    (["--distributed", "true"], "torchrun"),
    (["--extra", "mask_scale=none", "--extra", "mask_scale=keep", "--method", "ugt"],
     "--extra 'mask_scale' is given twice; allowed: each key once"),
    (["--data-root", "."], "--data-root '.' is not read by dataset 'csbm'"),
    (["--layers", "True"], "--layers"),
    (["--calibration-bins", "4"], "--calibration-bins 4 is not used without --evaluations"),
    (["--calibration-bins", "0", "--evaluations", "calibration"],
     "--calibration-bins 0 is invalid; allowed: a positive integer"),
    (["--holdout-rounding", "floor"], "--holdout-rounding floor is not used without"),
    (["--holdout-rounding", "round", "--holdout-classes", "0.4"], "--holdout-rounding"),
])
def test_refusals_leave_no_file(cli, tmp_path, argv, fragment):
    for command in ("train", "sweep"):
        out = tmp_path / command
        code, _, err = cli(command, *argv, "--out", out, *TINY)
        assert_one_line_error(code, err, fragment)
        assert not out.exists()


def test_an_uncreatable_out_is_refused_before_the_data_loads(cli, monkeypatch, tmp_path):
    import gnnmask.experiments.runs

    def no_loading(*args, **kwargs):
        raise AssertionError("the dataset was loaded before --out was checked")

    monkeypatch.setattr(gnnmask.experiments.runs, "load_data", no_loading)
    code, _, err = cli("train", "--out", "/proc/gnnmask-test/out", *TINY)
    assert_one_line_error(code, err, "/proc/gnnmask-test/out")


def test_dry_runs_print_settings_for_people_and_json_when_asked(cli, tmp_path):
    code, stdout, _ = cli("train", "--dry-run", "--lr", "0.02")
    assert code == 0 and "lr = 0.02" in " ".join(stdout.split())
    code, stdout, _ = cli("sweep", "--methods", "dense,ugt", "--dry-run",
                              "--out", tmp_path / "s")
    assert code == 0 and "ugt/L2/seed_0" in stdout and not stdout.lstrip().startswith("{")
    assert not (tmp_path / "s").exists()
