"""Sweeps: every cell written once, resumable after SIGKILL, refuses mixed configs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gnnmask.cli import main
from gnnmask.errors import UserError
from gnnmask.experiments import SweepError, sweep
from gnnmask.methods import Method, register_method
from gnnmask.train import RunConfig

REPO = Path(__file__).resolve().parents[2]
TINY = ["--epochs", "3", "--hidden", "8", "--device", "cpu"]


class _FailsAtDepth2(Method):
    name = "sweep-fail"

    def prepare(self, model, data):
        if self.config.layers == 2:
            raise RuntimeError("boom")
        return model


#: Registered in every process (for the CLI and worker processes).
REGISTERED = ["dense", "ugt"]
#: Two methods for in-process sweeps.
TWO = REGISTERED


def base(**kw):
    return RunConfig(**{"hidden": 8, "epochs": 3, "device": "cpu", **kw})


def cell_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes()
            for p in sorted(out.glob("cells/**/seed_*.json"))}


def test_sweep_writes_each_cell_and_rerun_skips(tmp_path):
    out = tmp_path / "sw"
    records = sweep(base(), [1, 2], TWO, [0], out)
    assert len(records) == 4
    files = cell_files(out)
    assert sorted(files) == sorted(f"cells/{m}/L{d}/seed_0.json" for m in TWO for d in (1, 2))
    for name, raw in files.items():
        rec = json.loads(raw)
        method, depth = name.split("/")[1:3]
        assert rec["config"]["method"] == method and f"L{rec['config']['layers']}" == depth
    assert [(r["config"]["method"], r["config"]["layers"]) for r in records] == \
        [(m, d) for m in TWO for d in (1, 2)]
    spec = json.loads((out / "sweep.json").read_text())
    assert spec["depths"] == [1, 2] and spec["methods"] == TWO and spec["seeds"] == [0]
    assert "layers" not in spec["base"] and spec["base"]["hidden"] == 8

    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("cells/*/L*/seed_*.json")}
    stale = out / "cells" / "dense" / "L1" / ".seed_0.json.abc123.tmp"
    stale.write_text('{"partial')  # as left by a killed process
    again = sweep(base(), [1, 2], TWO, [0], out)
    assert [r["test_acc"] for r in again] == [r["test_acc"] for r in records]
    assert cell_files(out) == files and not stale.exists()
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes

    # extending the lists trains only the new cells
    sweep(base(), [1, 3], ["dense"], [0, 1], out)
    now = cell_files(out)
    assert {k: now[k] for k in files} == files
    assert set(now) - set(files) == {"cells/dense/L3/seed_0.json", "cells/dense/L1/seed_1.json",
                                     "cells/dense/L3/seed_1.json"}
    spec = json.loads((out / "sweep.json").read_text())
    assert spec["depths"] == [1, 2, 3] and spec["seeds"] == [0, 1]


def test_changed_config_is_refused(tmp_path):
    out = tmp_path / "sw"
    sweep(base(), [1], ["dense"], [0], out)
    sweep(base(dropout=0.5), [1], ["dense"], [0, 1], out)  # dense's default: no change
    with pytest.raises(UserError, match=r"cell dense/L1/seed_0 .*differs in hidden\)") as info:
        sweep(base(hidden=9), [1], ["dense"], [0], out)
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match=r"different base config \(differs in epochs, lr\)"):
        sweep(base(epochs=4, lr=0.1), [5], ["dense"], [0], out)  # no shared cell
    assert sorted(cell_files(out)) == ["cells/dense/L1/seed_0.json", "cells/dense/L1/seed_1.json"]


def test_failed_cell_is_named_and_others_are_kept(tmp_path):
    register_method(_FailsAtDepth2)  # the registry is restored after each test (conftest)
    out = tmp_path / "sw"
    with pytest.raises(SweepError, match=r"cell sweep-fail/L2/seed_0 failed: RuntimeError: boom"):
        sweep(base(), [1, 2, 3], ["sweep-fail"], [0], out)
    assert sorted(cell_files(out)) == ["cells/sweep-fail/L1/seed_0.json",
                                       "cells/sweep-fail/L3/seed_0.json"]


@pytest.mark.parametrize("axis, total", [
    (["--methods", "dense", "--seeds", "0,1,2"], 9),
    (["--methods", "dense,random,imp", "--sparsities", "0.5,0.8", "--seeds", "0,1"], 16),
])
def test_resume_after_sigkill(tmp_path, capsys, axis, total):
    out = tmp_path / "sw"
    argv = ["sweep", "--depths", "1,2,3" if total == 9 else "1,2", *axis, "--epochs", "40",
            "--hidden", "8", "--device", "cpu", "--out", str(out), "--quiet",
            "--layer-metrics", "none"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "gnnmask", *argv], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("cells/**/seed_*.json")):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no cell finished in time"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    before = cell_files(out)
    assert 1 <= len(before) < total
    for raw in before.values():
        assert json.loads(raw)["config"]["hidden"] == 8  # complete, parsable records only

    assert main(argv + ["--no-report"]) == 0
    after = cell_files(out)
    assert len(after) == total and {k: after[k] for k in before} == before
    assert not [p for p in out.rglob("*.tmp")]
    assert "test accuracy" in capsys.readouterr().out
    if total == 16:  # one imp run per depth and seed serves both sparsities
        assert sorted(k for k in after if k.startswith("cells/imp")) == [
            f"cells/imp/L{d}/s0.8/seed_{s}.json" for d in (1, 2) for s in (0, 1)]
        rounds = json.loads(after["cells/imp/L1/s0.8/seed_0.json"])["rounds"]
        assert 0.5 in [r["sparsity"] for r in rounds]


def test_parallel_jobs_give_the_same_cells(tmp_path, capsys):
    common = ["sweep", "--depths", "1,2", "--methods", ",".join(REGISTERED), "--seeds", "0",
              *TINY, "--quiet", "--no-report"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--out", str(tmp_path / "b"), "--jobs", "2"]) == 0
    a, b = cell_files(tmp_path / "a"), cell_files(tmp_path / "b")
    assert len(a) == 2 * len(REGISTERED) and sorted(a) == sorted(b)
    for name in a:
        assert json.loads(a[name])["config"] == json.loads(b[name])["config"]
    assert "depth" in capsys.readouterr().out


@pytest.mark.parametrize("flags, match", [
    (["--depths", "0,2"], "--depths '0,2'"),
    (["--depths", "2,x"], "--depths '2,x'"),
    (["--depths", "129"], "1..128"),
    (["--methods", "dense,nope"], "unknown method 'nope'"),
    (["--jobs", "0"], "--jobs 0"),
])
def test_bad_sweep_arguments_exit_2_with_one_line(tmp_path, capsys, flags, match):
    code = main(["sweep", *TINY, "--out", str(tmp_path / "x"), *flags])
    out, err = capsys.readouterr()
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_two_sweeps_never_share_a_folder(tmp_path):
    from gnnmask.experiments.sweep import _lock

    with _lock(tmp_path / "sw"):
        with pytest.raises(UserError, match="another sweep is writing to"):
            sweep(base(), [1], ["dense"], [0], tmp_path / "sw")
    assert not cell_files(tmp_path / "sw")


def test_a_sweep_of_compact_records_resumes_as_the_same_sweep(tmp_path):
    """Committed studies hold records without history (``--no-history``): a
    sweep re-run over them, with or without the flag, skips them."""
    out = tmp_path / "sw"
    sweep(base(history=False), [1], ["dense"], [0], out)
    files = cell_files(out)
    assert "history" not in json.loads(files["cells/dense/L1/seed_0.json"])
    sweep(base(history=False), [1], ["dense"], [0, 1], out)
    sweep(base(), [1], ["dense"], [0, 1], out)
    now = cell_files(out)
    assert {k: now[k] for k in files} == files and len(now) == 2


def test_records_from_before_a_setting_existed_resume_as_its_default(tmp_path):
    """A setting added to RunConfig later counts as its default in records
    that lack it, so an older study resumes instead of being refused."""
    out = tmp_path / "sw"
    sweep(base(history=False, model="gin"), [1], ["dense"], [0], out)
    path = out / "cells" / "dense" / "L1" / "seed_0.json"
    record = json.loads(path.read_text())
    del record["config"]["aggr"]  # as written before the field existed
    path.write_text(json.dumps(record))
    sweep(base(history=False, model="gin"), [1], ["dense"], [0], out)
    assert json.loads(path.read_text()) == record  # skipped, not re-run
    with pytest.raises(UserError, match="differs in aggr"):
        sweep(base(history=False, model="gin", aggr="mean"), [1], ["dense"], [0], out)
