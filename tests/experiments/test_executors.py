"""Sweeps on other executors: Ray tasks and a Slurm job array (submitit's local mode)."""

from __future__ import annotations

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
from gnnmask.experiments.executors import make_executor

REPO = Path(__file__).resolve().parents[2]
ARGS = ["--depths", "1,2", "--methods", "dense,ugt", "--seeds", "0,1", "--epochs", "30",
        "--hidden", "8", "--device", "cpu", "--quiet", "--no-report", "--layer-metrics", "none"]
EXECUTORS = {"ray": ["--executor", "ray", "--cpus-per-cell", "1"],
             "slurm": ["--executor", "slurm", "--slurm-local", "--slurm-time", "5"]}


def cells(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes()
            for p in sorted(out.glob("cells/**/seed_*.json"))}


def _records(out: Path) -> dict[str, dict]:
    return {k: json.loads(v) for k, v in cells(out).items()}


@pytest.mark.parametrize("executor", ["ray", "slurm"])
def test_killed_driver_resumes_to_the_same_records(tmp_path, capsys, executor):
    pytest.importorskip("ray" if executor == "ray" else "submitit")
    out = tmp_path / "sw"
    argv = ["sweep", *ARGS, *EXECUTORS[executor], "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "gnnmask", *argv], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not cells(out):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no cell finished in time"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # the driver alone
    finally:
        proc.wait()
        proc.stderr.close()
    time.sleep(1.0)
    before = cells(out)
    assert 1 <= len(before) <= 8
    assert all(json.loads(raw)["config"]["hidden"] == 8 for raw in before.values())
    assert main(argv) == 0  # resumed on the same executor
    after = cells(out)
    assert len(after) == 8
    assert not list(out.rglob("cells/**/.*.tmp"))
    # the same cells as a local sweep, whichever executor trained them
    assert main(["sweep", *ARGS, "--out", str(tmp_path / "local")]) == 0
    # Executor workers run one thread, this process two: float sums may round
    # differently in the last bits, so values agree to 1e-5, not bit for bit.
    local = _records(tmp_path / "local")
    for name, record in _records(out).items():
        assert record["config"] == local[name]["config"]
        strip = [{k: v for k, v in r.items() if k != "step_s"} for r in record["history"]]
        want = [{k: v for k, v in r.items() if k != "step_s"} for r in local[name]["history"]]
        assert [sorted(r) for r in strip] == [sorted(r) for r in want], name
        assert strip == [{k: pytest.approx(v, rel=1e-5, abs=1e-6) for k, v in r.items()}
                         for r in want], name
    capsys.readouterr()


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="dask"), "unknown --executor 'dask'; allowed: local, ray, slurm"),
    (dict(name="local", jobs=0), "--jobs 0"),
    (dict(name="ray", cpus_per_cell=0), "--cpus-per-cell"),
    (dict(name="slurm", slurm_time=0), "--slurm-time 0"),
])
def test_bad_executor_options(kwargs, match):
    with pytest.raises(UserError, match=match):
        make_executor(**kwargs)
