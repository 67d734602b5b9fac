"""The experiment sub-commands: ``sweep``, ``report``, ``metrics`` and ``demo``.

Each parses its arguments, calls :mod:`gnnmask.experiments` (or
:mod:`gnnmask.metrics`) and prints a compact summary; bad input is a one-line
:class:`~gnnmask.errors.UserError` (exit status 2).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import math
from pathlib import Path

from gnnmask.cli.args import (
    add_run_arguments,
    config_from_args,
    output_mode,
    parse_seeds,
    print_json,
    show_progress,
)
from gnnmask.cli.commands import _table as text_table
from gnnmask.cli.commands import settings_text, ticket_and_data
from gnnmask.errors import EXIT_DIVERGED, UserError
from gnnmask.experiments import accuracy_table, metrics_table, report, summarize_groups, sweep
from gnnmask.experiments.executors import make_executor
from gnnmask.experiments.runs import describe, diverged
from gnnmask.experiments.store import config_diff, read_record
from gnnmask.experiments.study import is_study, study_report
from gnnmask.experiments.sweep import _check_used, cell_config, cell_order, check_sparsities
from gnnmask.experiments.tables import sparsity_table
from gnnmask.methods import METHODS
from gnnmask.metrics import format_table, trace
from gnnmask.models.deep import MAX_LAYERS
from gnnmask.tasks import get_task_class
from gnnmask.train import RunConfig

log = logging.getLogger("gnnmask.cli")

DEMO = dict(depths=[2, 4, 8, 16, 32], hidden=64, epochs=200, seeds=[0])
DEMO_QUICK = dict(depths=[2, 4], hidden=8, epochs=5, seeds=[0])


def parse_depths(text: str) -> list[int]:
    """``"2,4,8"`` to ``[2, 4, 8]``; each an integer 1..MAX_LAYERS, no duplicates."""
    try:
        depths = [int(p) for p in text.split(",")]
    except ValueError:
        depths = []
    if not depths or any(not 1 <= d <= MAX_LAYERS for d in depths) or \
            len(set(depths)) != len(depths):
        raise UserError(f"--depths {text!r} is malformed; allowed: distinct comma-separated "
                        f"integers 1..{MAX_LAYERS}, e.g. 2,4,8,16")
    return depths


def parse_methods(text: str) -> list[str]:
    """``"dense,ugt"`` to a list of registered method names."""
    methods = [p.strip() for p in text.split(",")]
    for m in methods:
        if m not in METHODS:
            raise UserError(f"unknown method {m!r} in --methods; allowed: "
                            f"{', '.join(sorted(METHODS))}")
    if len(set(methods)) != len(methods):
        raise UserError(f"--methods {text!r} names a method twice")
    return methods


def _cell_logger(args):
    """Without a progress bar (not a terminal), log one line per finished cell."""
    if getattr(args, "quiet", False) or show_progress(args):
        return None
    return lambda cell, r: log.info("%-28s %s", cell.name, describe(r))


def _print_paths(paths: dict[str, Path]) -> None:
    print("report:")
    for path in paths.values():
        print(f"  {path}")


def parse_sparsities(text: str | None) -> list[float] | None:
    """``"0.5,0.8,0.9"`` to a list of floats (``None`` for no axis)."""
    if text is None:
        return None
    try:
        return [float(p) for p in text.split(",")]
    except ValueError:
        raise UserError(f"--sparsities {text!r} is malformed; allowed: comma-separated "
                        "fractions, e.g. 0.5,0.8,0.9") from None


def _executor(args, out: Path):
    return make_executor(
        getattr(args, "executor", "local"), jobs=args.jobs, out=out,
        ray_address=getattr(args, "ray_address", None),
        cpus_per_cell=getattr(args, "cpus_per_cell", 1.0),
        gpus_per_cell=getattr(args, "gpus_per_cell", 0.0),
        slurm_partition=getattr(args, "slurm_partition", None),
        slurm_time=getattr(args, "slurm_time", 60),
        slurm_local=getattr(args, "slurm_local", False))


def _run_sweep(base, depths, methods, seeds, out: Path, args, jobs: int,
               mode: str = "auto", sparsities=None) -> list[dict]:

    return sweep(base, depths, methods, seeds, out, jobs=jobs, progress=show_progress(args),
                 mode=mode, sparsities=sparsities, executor=_executor(args, out),
                 on_cell=_cell_logger(args))


def _dry_run(base, depths, methods, seeds, out: Path, sparsities, as_json: bool) -> None:
    _check_used(base, methods)
    sparsities = check_sparsities(sparsities, base, methods)
    cells = []
    for cell in cell_order(depths, methods, seeds, sparsities):
        config = cell_config(base, cell, sparsities)
        record = read_record(cell.path(out))
        cells.append({"cell": cell.name, "finished": record is not None,
                      "conflict": record is not None and bool(
                          config_diff(record["config"], config.to_dict())),
                      "config": config.to_dict()})
    if as_json:
        print_json({"out": str(out), "cells": cells})
        return

    configs = [c["config"] for c in cells]
    shared = {k: v for k, v in configs[0].items()
              if k not in ("seed", "layers", "method") and all(c[k] == v for c in configs)}
    print(f"out: {out}\n{len(cells)} cells, {sum(c['finished'] for c in cells)} finished "
          "earlier (skipped when run)")
    rows = [("cell", "status", "own settings")]
    for c in cells:
        own = ", ".join(f"{k}={v}" for k, v in c["config"].items() if v is not None
                        and k not in shared and k not in ("seed", "layers", "method"))
        status = ("different config (refused)" if c["conflict"] else "finished"
                  if c["finished"] else "to run")
        rows.append((c["cell"], status, own or "-"))
    print(text_table(rows))
    print("shared settings:")
    print(settings_text(shared))


# -- sweep -------------------------------------------------------------------
def cmd_sweep(args) -> int:
    depths, methods = parse_depths(args.depths), parse_methods(args.methods)
    seeds = parse_seeds(args.seeds)
    base = config_from_args(args)
    _executor(args, Path("."))  # bad executor options fail before anything runs
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    dataset = base.dataset or get_task_class(base.task).default_dataset
    out = Path(args.out or f"runs/{dataset}-{base.model}-sweep-{stamp}")
    sparsities = parse_sparsities(args.sparsities)
    if args.dry_run:
        _dry_run(base, depths, methods, seeds, out, sparsities, args.json)
        return 0
    records = _run_sweep(base, depths, methods, seeds, out, args, args.jobs,
                         mode=output_mode(args), sparsities=sparsities)
    groups = summarize_groups(records)
    if sparsities:
        for depth in depths:
            print(f"\ntest accuracy at depth {depth} (mean ± std over seeds)")
            print(sparsity_table(groups, depth, sparsities))
    else:
        print("\ntest accuracy (mean ± std over seeds)")
        print(accuracy_table(groups))
    if args.report:
        _print_paths(report(out))
    else:
        print(f"records: {out}/cells/")
    return _diverged_status(records)


def _diverged_status(records) -> int:
    """0, or :data:`EXIT_DIVERGED` (saying which cells) when some record diverged."""
    lost = [r for r in records if diverged(r)]
    if not lost:
        return 0
    print(f"diverged: {len(lost)} of {len(records)} cell(s) (non-finite loss or outputs; "
          f"shown in the report, left out of its means); exit status {EXIT_DIVERGED}")
    return EXIT_DIVERGED


# -- report ------------------------------------------------------------------
def cmd_report(args) -> int:
    make = study_report if is_study(args.run_dir) else report
    for path in make(args.run_dir, out=args.out).values():
        print(path)
    return 0


# -- metrics -----------------------------------------------------------------
def _table(rows: list[dict]) -> str:
    return format_table(rows)


def _record_rows(path: Path) -> list[dict]:
    if path.is_dir():
        raise UserError(f"--run {str(path)!r} is a folder; allowed: a record file such as "
                        f"{path / 'seed_0.json'}")
    if not path.is_file():
        raise UserError(f"--run {str(path)!r} does not exist; allowed: a record file such as "
                        "runs/NAME/seed_0.json")
    record = read_record(path)
    if record is None:
        raise UserError(f"--run {str(path)!r} is not a seed record (a truncated file, or a "
                        "summary.json/config.json); allowed: runs/NAME/seed_<s>.json")
    rows = record.get("layers")
    if not isinstance(rows, list) or not rows:
        raise UserError(f"record {str(path)!r} holds no per-layer metrics ('layers'); "
                        "re-run it with --layer-metrics default")
    return rows


def _ticket_rows(args) -> list[dict]:
    _, model, data = ticket_and_data(args)
    try:
        return trace(model, data)
    except RuntimeError as e:
        raise UserError(f"ticket {args.ticket!r} does not fit dataset {args.dataset!r}: "
                        f"{' '.join(str(e).split())[:200]}") from None


def _undefined(rows: list[dict]) -> list[str]:
    """Columns whose every value is a non-finite float (undefined for this graph)."""
    cols = dict.fromkeys(k for r in rows for k in r)
    return [c for c in cols if all(isinstance(r.get(c), float) and not math.isfinite(r[c])
                                   for r in rows)]


def cmd_metrics(args) -> int:
    rows = _record_rows(Path(args.run)) if args.run else _ticket_rows(args)
    if args.json:  # strict JSON: non-finite floats become null
        print_json([{k: None if isinstance(v, float) and not math.isfinite(v) else v
                     for k, v in r.items()} for r in rows])
        return 0
    undefined = _undefined(rows)
    print(_table([{k: v for k, v in r.items() if k not in undefined} for r in rows]))
    for col in undefined:
        print(f"note: {col} is undefined for this graph at every layer (e.g. mad_gap needs "
              "node pairs both near and far apart); left out")
    return 0


# -- demo --------------------------------------------------------------------
# The demo's two sweeps: a plain GCN, where depth over-smooths, and the deep
# recipe of docs/RESULTS.md ("Deep tickets"): parameter-free PairNorm and the
# initial residual, which keep both dense training and tickets accurate.
DEMO_SWEEPS = {"plain": {}, "deep-recipe": {"norm": "pair", "residual": "initial"}}


def cmd_demo(args) -> int:
    spec = DEMO_QUICK if args.quick else DEMO
    methods = ["dense", "ugt"] if "ugt" in METHODS else ["dense"]
    root = Path(args.out or ("runs/demo-quick" if args.quick else "runs/demo"))
    reports = []
    for name, flags in DEMO_SWEEPS.items():
        base = RunConfig(dataset="csbm", model="gcn", hidden=spec["hidden"],
                         epochs=spec["epochs"], **flags)
        out = root / name
        records = _run_sweep(base, spec["depths"], methods, spec["seeds"], out, args, args.jobs)
        groups = summarize_groups(records)
        what = ", ".join(f"{k} {v}" for k, v in flags.items()) or "no normalisation, no residual"
        print(f"\n[{name}: {what}] test accuracy on csbm by depth")
        print(accuracy_table(groups))
        shown = [m for m in ("mad", "dirichlet") if any(m in g["last"] for g in groups)]
        if shown:
            print(f"\n[{name}] last-layer over-smoothing: MAD and Dirichlet energy")
            print(metrics_table(groups, shown))
        reports.append(report(out)["report.md"])
    print("\nreports: " + ", ".join(str(p) for p in reports))
    return 0


# -- parsers -----------------------------------------------------------------
def add_parsers(sub) -> None:
    """Add ``sweep``, ``report``, ``metrics`` and ``demo`` to the ``gnnmask`` parser."""
    p = sub.add_parser("sweep", help="resumable depth x method x seed sweep")
    add_run_arguments(p, sweep=True)
    g = p.add_argument_group("sweep")
    g.add_argument("--depths", default="2,4,8,16", help="comma-separated depths, 1..128")
    g.add_argument("--methods", default="dense", help="comma-separated methods, e.g. dense,ugt")
    g.add_argument("--sparsities", default=None, metavar="S1,S2,...",
                   help="a sparsity axis, e.g. 0.5,0.8,0.9,0.95,0.99 (cells by method, depth, "
                        "sparsity and seed; methods without a sparsity run once)")
    g.add_argument("--jobs", type=int, default=1,
                   help="parallel worker processes of the local executor (default: 1)")
    g.add_argument("--json", action="store_true",
                   help="with --dry-run: print the cells as one JSON line")
    g.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                   help="write the report when the sweep finishes (default: yes)")
    e = p.add_argument_group("executor")
    e.add_argument("--executor", default="local", choices=["local", "ray", "slurm"],
                   help="where cells run: local processes, Ray tasks or a Slurm job array "
                        "(default: local)")
    e.add_argument("--ray-address", default=None,
                   help="Ray cluster to join (e.g. auto or ray://head:10001; default: start a "
                        "local instance)")
    e.add_argument("--cpus-per-cell", type=float, default=1.0,
                   help="CPUs per cell (Ray tasks, Slurm jobs; default: 1)")
    e.add_argument("--gpus-per-cell", type=float, default=0.0,
                   help="GPUs per cell, fractions share a card under Ray (default: 0)")
    e.add_argument("--slurm-partition", default=None, help="Slurm partition")
    e.add_argument("--slurm-time", type=int, default=60, help="minutes per cell (default: 60)")
    e.add_argument("--slurm-local", action="store_true",
                   help="run the job array on this machine (submitit's local executor)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("report", help="report.md, results.csv and plots of a run or sweep "
                       "folder; study.md, study.csv and plots of a folder of sweeps")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a sweep or train output folder, or a "
                   "folder of sweeps (a study, e.g. docs/results/study)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write the report here (default: RUN_DIR itself)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("metrics", help="per-layer over-smoothing metrics of a record or ticket")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", metavar="RECORD.json", help="a run record (e.g. runs/X/seed_0.json)")
    src.add_argument("--ticket", metavar="PATH", help="a saved ticket (needs --dataset)")
    p.add_argument("--dataset", default=None, help="dataset of the ticket")
    p.add_argument("--data-root", default=None)
    p.add_argument("--split", type=int, default=0)
    p.add_argument("--seed", type=int, default=None,
                   help="data seed (csbm graph, random splits; default: the ticket's seed)")
    p.add_argument("--json", action="store_true", help="print the rows as one JSON line")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("demo", help="depth sweeps on the embedded csbm graph (plain GCN and the "
                                    "deep recipe), with their reports")
    p.add_argument("--out", default=None, help="output folder (default: runs/demo; one "
                                              "sub-folder per sweep: plain, deep-recipe)")
    p.add_argument("--quick", action="store_true", help="a tiny version that runs in seconds")
    p.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_demo)
