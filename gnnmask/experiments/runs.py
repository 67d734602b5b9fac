"""Running one configuration over several seeds and writing its run folder.

A run folder ``runs/NAME/`` holds::

    config.json     the resolved configuration, with the run's ``seeds``
                    (``gnnmask train --config`` reads it back)
    seed_<s>.json   one record per seed (see :func:`gnnmask.train.train`)
    summary.json    mean and standard deviation over seeds

Each file is written atomically as soon as it is known, so an interrupted run
keeps every seed that finished; re-running skips seeds whose record exists and
whose configuration matches (see :mod:`gnnmask.experiments.store` for the
output modes ``auto``, ``resume`` and ``overwrite``).
"""

from __future__ import annotations

import datetime as _dt
import logging
import statistics
from pathlib import Path
from typing import Any

from gnnmask.errors import check_arg
from gnnmask.experiments.store import (
    check_mode,
    check_output_dir,
    check_same_config,
    finished_records,
    metric_of,
    overwrite,
    readable,
)
from gnnmask.train import RunConfig, resolve_config, resolve_device, train, write_json_atomic
from gnnmask.train.distributed import check_environment, is_main_process
from gnnmask.train.engine import load_data

log = logging.getLogger(__name__)


def score(d: dict[str, Any], split: str):
    """``split``'s value of the primary metric of a record or summary
    (``test_acc``, ``test_auc``, ...), ``None`` where it has none."""
    return d.get(f"{split}_{metric_of(d)}")


def score_std(d: dict[str, Any], split: str):
    """The standard deviation over seeds of :func:`score` in a summary."""
    return d.get(f"{split}_{metric_of(d)}_std")


#: How each primary metric is named in tables and plots.
METRIC_LABELS = {"acc": "accuracy", "auc": "ROC-AUC", "rocauc": "ROC-AUC"}


def score_label(d: dict[str, Any]) -> str:
    """``accuracy``, ``ROC-AUC``: the primary metric of a record or summary as prose."""
    return METRIC_LABELS.get(metric_of(d), metric_of(d))


def default_run_name(config: RunConfig) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{config.dataset}-{config.model}{config.layers}-{config.method}-{stamp}"


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def diverged(record: dict[str, Any]) -> bool:
    """Whether a record's training diverged (its loss or outputs became non-finite)."""
    return record.get("status") == "diverged"


#: Inference-cost fields of a record (:func:`gnnmask.train.engine.inference_cost`)
#: that summaries average over seeds.
COST_KEYS = ("inference_macs", "transform_macs", "propagation_macs", "dense_macs",
             "model_bytes", "dense_model_bytes")


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation over the seed records that finished;
    diverged seeds are counted (``diverged_seeds``), never averaged in."""
    c = records[0]["config"]
    kept = [r for r in records if not diverged(r)]
    out: dict[str, Any] = {
        "dataset": c["dataset"], "model": c["model"], "layers": c["layers"],
        "hidden": c["hidden"], "method": c["method"], "sparsity": c.get("sparsity"),
        "seeds": [r["seed"] for r in kept],
        "diverged_seeds": [r["seed"] for r in records if diverged(r)],
    }
    out["metric"] = metric = metric_of(records[0])
    for split in ("test", "val", "train"):
        key = f"{split}_{metric}"
        out[key], out[f"{key}_std"] = _mean_std([r[key] for r in kept])
    times = [r["epoch_time_s"] for r in kept if r.get("epoch_time_s") is not None]
    out["epoch_time_s"] = statistics.median(times) if times else None
    out["params"] = records[0]["params"]
    out["nonzero_params"] = round(statistics.fmean(r["nonzero_params"] for r in records))
    achieved = [r["method"]["achieved_sparsity"] for r in kept
                if "achieved_sparsity" in r.get("method", {})]
    if achieved:
        out["achieved_sparsity"] = statistics.fmean(achieved)
    edges = [r["method"]["edge_sparsity"] for r in kept if "edge_sparsity" in r.get("method", {})]
    if edges:  # graph sparsity (graph lottery tickets), beside the weights'
        out["edge_sparsity"] = statistics.fmean(edges)
    out["best_epochs"] = [r["best_epoch"] for r in kept]
    # seeds whose final model predicts one class for every test example
    out["one_class_seeds"] = [r["seed"] for r in kept if one_class(r)]
    for key in COST_KEYS:  # records from before the cost fields have none
        values = [r[key] for r in kept if r.get(key) is not None]
        if values:
            out[key] = statistics.fmean(values)
    return out


def one_class(record: dict[str, Any]) -> bool:
    """Whether the record's final model predicts one class for every test
    example (``predicted_classes``; records from before the field: False)."""
    counts = record.get("predicted_classes")
    return isinstance(counts, dict) and counts.get("test") == 1


def describe(record: dict[str, Any]) -> str:
    """One line for a finished seed or cell: its accuracies, or where it diverged."""
    def num(v):
        return "-" if v is None else f"{v:.4f}"

    text = f"test {num(score(record, 'test'))}  val {num(score(record, 'val'))}"
    if one_class(record):
        text += "  (one class for every test node)"
    if diverged(record):
        d = record["diverged"]
        where = f" in {d['phase']}" if "phase" in d else ""
        text += f"  DIVERGED at epoch {d['epoch']}{where} ({d['reason']})"
    return text


def run_seeds(
    config: RunConfig,
    seeds: list[int],
    out: str | Path,
    *,
    mode: str = "auto",
    progress: bool = False,
    log_every: int | None = None,
    on_record=None,
    data=None,
    on_model=None,
    require: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Train ``config`` once per seed, writing records under ``out``.

    Everything is checked before anything is written: the configuration, the
    device, the output folder and (by loading it) the dataset. ``mode`` says
    what to do with finished records already in ``out`` (see
    :mod:`gnnmask.experiments.store`); finished seeds are skipped and logged.
    ``progress``/``log_every``: see :func:`gnnmask.train.train`.
    ``on_record(record, model)`` is called after each seed, before its record
    is written (e.g. to save a ticket and note its path in the record);
    ``on_model(seed, model, inputs)`` once each seed's final model is
    evaluated (see :func:`gnnmask.train.train`). A finished record lacking
    a key of ``require`` (e.g. ``"ticket"``: the ticket it should have saved)
    is trained again.
    Returns the summary (also written to ``out/summary.json``).
    """
    check_arg("run_seeds", "config", config, RunConfig, "a gnnmask.train.RunConfig")
    out = Path(out)
    check_mode(mode)
    resolved = resolve_config(config, data=data)
    resolve_device(resolved.device)
    check_environment(resolved)
    check_output_dir(out)
    base = resolved.to_dict()
    found = finished_records(out, out.glob("seed_*.json") if out.is_dir() else (), mode,
                             "record")
    main = is_main_process() if resolved.distributed else True
    if mode == "overwrite":
        if main:
            overwrite(out, found, out / "summary.json")
        found = {}
    done = readable(found, "seed")
    for path, record in done.items():
        check_same_config(record["config"], base, f"{path.name} in {out}", "the run")
    finished = {r["seed"]: r for r in done.values()
                if all(key in r for key in require)}  # e.g. a wanted ticket must exist too
    skipped = [s for s in seeds if s in finished]
    todo = [s for s in seeds if s not in finished]
    if skipped:
        log.info("%s: seed(s) %s finished earlier, skipped", out, ",".join(map(str, skipped)))
    loaded = {}
    if todo and data is None:  # a bad dataset or data root fails here, before any write
        loaded[todo[0]] = load_data(resolved.replace(seed=todo[0]))
    every = sorted({*seeds, *(r["seed"] for r in done.values())})
    if main:  # in a distributed run, rank 0 writes and the other ranks train alongside
        write_json_atomic(out / "config.json", {**{k: v for k, v in base.items()
                                                   if k != "seed"}, "seeds": every})
    records = []
    for seed in seeds:
        if seed in finished:
            records.append(finished[seed])
            continue
        hook = None if on_model is None else (lambda m, i, s=seed: on_model(s, m, i))
        record, model = train(resolved.replace(seed=seed), data=loaded.pop(seed, data),
                              progress=progress, log_every=log_every, return_model=True,
                              on_model=hook)
        if not main:
            records.append(record)
            continue
        if on_record is not None:
            on_record(record, model)
        write_json_atomic(out / f"seed_{seed}.json", record)
        log.info("seed %d: %s  (best epoch %d, %.1f s)", seed, describe(record),
                 record["best_epoch"], record["total_time_s"])
        records.append(record)
    summary = summarize(records)
    summary["out"] = str(out)
    summary["skipped_seeds"] = skipped
    if main:
        write_json_atomic(out / "summary.json", summary)
    return summary
