"""Experiments: multi-seed runs, resumable sweeps and reports built on the engine."""

from gnnmask.experiments.report import (
    accuracy_table,
    load_records,
    metric_names,
    metrics_table,
    report,
    summarize_groups,
)
from gnnmask.experiments.runs import default_run_name, run_seeds, summarize
from gnnmask.experiments.sweep import Cell, SweepError, load_cells, sweep

__all__ = [
    "Cell",
    "SweepError",
    "accuracy_table",
    "default_run_name",
    "load_cells",
    "load_records",
    "metric_names",
    "metrics_table",
    "report",
    "run_seeds",
    "summarize",
    "summarize_groups",
    "sweep",
]
