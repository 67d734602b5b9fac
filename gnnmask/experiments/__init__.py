"""Experiments: multi-seed runs, resumable sweeps and reports built on the engine."""

from gnnmask.experiments.runs import default_run_name, run_seeds, summarize

__all__ = ["default_run_name", "run_seeds", "summarize"]
