"""Running one configuration over several seeds and writing its run folder.

A run folder ``runs/NAME/`` holds::

    config.json     the resolved configuration (seed aside)
    seed_<s>.json   one record per seed (see :func:`gnnmask.train.train`)
    summary.json    mean and standard deviation over seeds

Each file is written atomically as soon as it is known, so an interrupted run
keeps every seed that finished; re-running skips seeds whose record exists and
whose configuration matches.
"""

from __future__ import annotations

import datetime as _dt
import statistics
from pathlib import Path
from typing import Any

from gnnmask.errors import UserError
from gnnmask.train import RunConfig, read_json, resolve_config, train, write_json_atomic


def default_run_name(config: RunConfig) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{config.dataset}-{config.model}{config.layers}-{config.method}-{stamp}"


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation over seed records."""
    c = records[0]["config"]
    out: dict[str, Any] = {
        "dataset": c["dataset"], "model": c["model"], "layers": c["layers"],
        "hidden": c["hidden"], "method": c["method"], "sparsity": c.get("sparsity"),
        "seeds": [r["seed"] for r in records],
    }
    for key in ("test_acc", "val_acc", "train_acc"):
        out[key], out[f"{key}_std"] = _mean_std([r[key] for r in records])
    out["epoch_time_s"] = statistics.median(r["epoch_time_s"] for r in records)
    out["params"] = records[0]["params"]
    out["nonzero_params"] = round(statistics.fmean(r["nonzero_params"] for r in records))
    achieved = [r["method"]["achieved_sparsity"] for r in records
                if "achieved_sparsity" in r.get("method", {})]
    if achieved:
        out["achieved_sparsity"] = statistics.fmean(achieved)
    out["best_epochs"] = [r["best_epoch"] for r in records]
    return out


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in ("seed", "device", "data_root")}


def run_seeds(
    config: RunConfig,
    seeds: list[int],
    out: str | Path,
    *,
    progress: bool = False,
    on_record=None,
    data=None,
) -> dict[str, Any]:
    """Train ``config`` once per seed, writing records under ``out``.

    ``on_record(record, model)`` is called after each seed, before its record
    is written (e.g. to save a ticket and note its path in the record).
    Returns the summary (also written to ``out/summary.json``).
    """
    out = Path(out)
    resolved = resolve_config(config)
    base = resolved.to_dict()
    cfg_path = out / "config.json"
    if cfg_path.exists():
        old = read_json(cfg_path)
        if _comparable(old) != _comparable(base):
            diff = sorted(k for k in _comparable(base) if old.get(k) != base.get(k))
            raise UserError(
                f"{out} holds a run with a different config (differs in {', '.join(diff)}); "
                "choose another --out"
            )
    loaded = {}
    if data is None:  # a bad dataset or data root fails here, before anything is written
        from gnnmask.data import load_dataset

        loaded[seeds[0]] = load_dataset(resolved.dataset, root=resolved.data_root,
                                        split=resolved.split, seed=seeds[0])
    write_json_atomic(cfg_path, base)
    records = []
    for seed in seeds:
        path = out / f"seed_{seed}.json"
        if path.exists():
            record = read_json(path)
            if on_record is None or "ticket" in record:
                records.append(record)
                continue
        record, model = train(resolved.replace(seed=seed), data=loaded.pop(seed, data),
                              progress=progress, return_model=True)
        if on_record is not None:
            on_record(record, model)
        write_json_atomic(path, record)
        records.append(record)
    summary = summarize(records)
    summary["out"] = str(out)
    write_json_atomic(out / "summary.json", summary)
    return summary
