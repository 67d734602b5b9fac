"""Reading finished records and aggregating them over seeds: the numbers a
report shows (:mod:`gnnmask.experiments.report`), with no formatting."""

from __future__ import annotations

import logging
import math
import os
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from gnnmask.errors import UserError
from gnnmask.experiments.runs import diverged, summarize
from gnnmask.experiments.store import read_record
from gnnmask.experiments.sweep import load_cells
from gnnmask.metrics import METRICS
from gnnmask.train import read_json

log = logging.getLogger(__name__)


def metric_label(name: str) -> str:
    """The display name of a metric (its :class:`~gnnmask.metrics.Metric`
    label; an unregistered one by its key)."""
    return METRICS[name].label if name in METRICS else name


_NOT_METRICS = {"layer", "dim"}


def load_records(run_dir: str | os.PathLike) -> tuple[str, list[dict[str, Any]], list[Path]]:
    """``(kind, records, unreadable)`` for a folder: ``kind`` is ``"sweep"``
    or ``"run"``; ``unreadable`` the record files that do not parse (left
    out, and named in the report). UserError if nothing is readable."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        what = "is a file" if run_dir.exists() else "does not exist"
        raise UserError(f"run folder {str(run_dir)!r} {what}; allowed: a sweep or train "
                        "output folder")
    cells, unreadable = load_cells(run_dir)
    if cells:
        try:  # methods in the order the sweep named them
            order = read_json(run_dir / "sweep.json")["methods"]
        except (OSError, ValueError, KeyError, TypeError):
            order = []
        rank = {m: i for i, m in enumerate(order)}
        cells.sort(key=lambda cr: (rank.get(cr[0].method, len(rank)), cr[0].method,
                                   cr[0].depth, cr[0].seed))
        return "sweep", [record for _, record in cells], unreadable
    paths = sorted(run_dir.glob("seed_*.json"))
    runs = {p: read_record(p) for p in paths}
    unreadable += [p for p, r in runs.items() if r is None]
    records = sorted((r for r in runs.values() if r is not None), key=lambda r: r["seed"])
    if records:
        return "run", records, unreadable
    bad = f"; unreadable: {', '.join(p.name for p in unreadable[:4])}" if unreadable else ""
    raise UserError(f"{str(run_dir)!r} holds no finished records (cells/*/L*/seed_*.json "
                    f"or seed_*.json){bad}")


def metric_names(records: Iterable[dict]) -> list[str]:
    """Numeric per-layer columns found in the records, in first-seen order."""
    names: dict[str, None] = {}
    for r in records:
        for row in r.get("layers") or []:
            for k, v in row.items():
                if k not in _NOT_METRICS and _is_number(v):
                    names.setdefault(k)
    return list(names)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fmean(values: Iterable) -> float:
    finite = [float(v) for v in values if _is_number(v) and math.isfinite(v)]
    return statistics.fmean(finite) if finite else float("nan")


def layer_means(records: Sequence[dict], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Per-layer rows (``layer``, ``name``, ``dim``, metrics) averaged over ``records``."""
    by_layer: dict[int, list[dict]] = {}
    for r in records:
        for i, row in enumerate(r.get("layers") or []):
            by_layer.setdefault(int(row.get("layer", i)), []).append(row)
    return [{"layer": i, "name": rows[0].get("name", ""), "dim": rows[0].get("dim"),
             **{m: _fmean(row.get(m) for row in rows) for m in metrics}}
            for i, rows in sorted(by_layer.items())]


def expand_rounds(records: Sequence[dict]) -> list[dict]:
    """Records of iterative methods (``rounds``: one entry per pruning round)
    become one record per round, at the round's sparsity, so that one run
    gives every point of an accuracy-against-sparsity curve; the last round
    is the record itself (with its per-layer metrics)."""
    out = []
    for r in records:
        rounds = r.get("rounds") or []
        if not (rounds and rounds[-1].get("diverged")) and diverged(r):
            rounds = [*rounds, None]  # every reported round finished before the divergence
        for rd in rounds[:-1]:
            out.append({**r, "status": "finished", "diverged": None,
                        "config": {**r["config"], "sparsity": rd["sparsity"]},
                        "predicted_classes": rd.get("predicted_classes"),
                        **{k: rd[k] for k in rd if k.startswith(("train_", "val_", "test_"))
                           or k in ("best_epoch", "nonzero_params")},
                        "method": {**r.get("method", {}),
                                   "achieved_sparsity": rd.get("achieved_sparsity"),
                                   **({"edge_sparsity": rd["edge_sparsity"]}
                                      if "edge_sparsity" in rd else {})},
                        "layers": [], "round_of": r["config"]["sparsity"]})
        out.append(r)
    return out


def summarize_groups(records: Sequence[dict]) -> list[dict[str, Any]]:
    """One summary per (method, depth, sparsity): :func:`~gnnmask.experiments.summarize`
    plus ``last`` (mean last-layer metrics) and ``records``; sorted by method
    (first-seen order), depth and sparsity. Iterative methods contribute one
    group per pruning round (:func:`expand_rounds`)."""
    records = expand_rounds(records)
    groups: dict[tuple[str, int, float | None], list[dict]] = {}
    for r in records:
        c = r["config"]
        groups.setdefault((c["method"], c["layers"], c.get("sparsity")), []).append(r)
    order = {m: i for i, m in enumerate(dict.fromkeys(k[0] for k in groups))}
    metrics = metric_names(records)
    out = []
    for key in sorted(groups, key=lambda k: (order[k[0]], k[1], -1 if k[2] is None else k[2])):
        everything = sorted(groups[key], key=lambda r: r["seed"])
        s = summarize(everything)  # means over the finished seeds; diverged ones counted
        rs = [r for r in everything if not diverged(r)]
        s["records"], s["diverged_records"] = rs, [r for r in everything if diverged(r)]
        s["last"] = {m: _fmean((r.get("layers") or [{}])[-1].get(m) for r in rs)
                     for m in metrics}
        s["evaluation"] = evaluation_means(rs)
        out.append(s)
    return out


def evaluation_means(records: Sequence[dict]) -> dict[str, Any]:
    """Means over ``records`` of their ``evaluation`` (``--evaluations``):
    ``ece`` (and ``ece_scaled``, ``temperature`` after temperature scaling),
    ``ood_auroc``, and per perturbation budget the accuracies under
    ``features`` and ``edges`` perturbations; ``{}`` without evaluations."""
    evs = [r["evaluation"] for r in records if r.get("evaluation")]
    out: dict[str, Any] = {}
    if not evs:
        return out
    if all("calibration" in e for e in evs):
        out["ece"] = statistics.fmean(e["calibration"]["ece"] for e in evs)
        if all("ece_scaled" in e["calibration"] for e in evs):  # older records lack it
            out["ece_scaled"] = statistics.fmean(e["calibration"]["ece_scaled"] for e in evs)
            out["temperature"] = statistics.fmean(e["calibration"]["temperature"] for e in evs)
        bins = [e["calibration"]["bins"] for e in evs]
        out["bins"] = [{"confidence": _fmean(b[i]["confidence"] for b in bins),
                        "accuracy": _fmean(b[i]["accuracy"] for b in bins),
                        "count": sum(b[i]["count"] for b in bins)} for i in range(len(bins[0]))]
    if all("ood" in e for e in evs):
        out["ood_auroc"] = statistics.fmean(e["ood"]["auroc"] for e in evs)
    if all("robustness" in e for e in evs):
        out["budgets"] = evs[0]["robustness"]["budgets"]
        for kind in ("features", "edges"):
            out[kind] = [statistics.fmean(e["robustness"][kind][i] for e in evs)
                         for i in range(len(out["budgets"]))]
    return out
