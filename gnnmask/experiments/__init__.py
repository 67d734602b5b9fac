"""Experiments: multi-seed runs, resumable sweeps and reports built on the engine."""

from gnnmask.experiments.aggregate import load_records, metric_names, summarize_groups
from gnnmask.experiments.report import report
from gnnmask.experiments.runs import default_run_name, run_seeds, summarize
from gnnmask.experiments.sweep import Cell, SweepError, load_cells, sweep
from gnnmask.experiments.tables import accuracy_table, metrics_table

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
