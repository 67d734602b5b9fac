"""Published results and gnnmask's measured value for each: ``gnnmask reproduce``.

An :class:`Entry` names one published number (paper, table or figure,
dataset, model, depth, method, sparsity, value and tolerance) and the run
settings that reproduce it (a preset and changes on top). Entries are tables
of ``entries.toml`` in this folder and register in :data:`ENTRIES` when the
package is imported. Tolerances come from the paper's reported spread (its
standard deviation over seeds or splits) or are 1.5 points where it gives none;
they are set before measuring, never after.

A measured entry is compact data (:func:`result_of`): the resolved config,
versions, seeds and each seed's final metrics, with no per-epoch history,
stored as ``<name>.json`` in a results folder (the repository's is
``docs/results/reproduce``) so measurements accumulate and
:func:`~gnnmask.reproduce.report.write_report` renders them anywhere.
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from gnnmask.errors import UserError
from gnnmask.experiments.store import config_diff
from gnnmask.registry import Registry
from gnnmask.train import write_json_atomic
from gnnmask.train.config import RunConfig, preset_config, resolve_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

__all__ = ["ENTRIES", "Entry", "entry_config", "load_result", "result_of", "status"]

#: Tolerance where a paper reports no spread: 1.5 points.
DEFAULT_TOLERANCE = 0.015

#: Format of a stored result (bumped when its fields change meaning).
RESULT_FORMAT = 1


@dataclass(frozen=True)
class Entry:
    """One published result and how gnnmask reruns it.

    Attributes:
        name: registry key (``gnnmask reproduce run NAME``).
        paper: short citation, e.g. ``"Kipf & Welling 2017"``.
        citation: full citation.
        where: the table or figure, e.g. ``"Table 2"``; ``"Figure 3 (read off
            the figure)"`` where the value was read from a plot.
        published: the published value (a fraction, e.g. 0.815).
        tolerance: how far gnnmask's mean may be from ``published`` and still
            count as reproduced (the paper's spread, else
            :data:`DEFAULT_TOLERANCE`).
        tolerance_source: where the tolerance comes from.
        metric: the record field compared (default ``test_acc``).
        preset: the preset the run starts from, if any.
        settings: RunConfig changes on top of the preset (``extra`` merges).
        seeds: the seeds run.
        cost_min: estimated CPU minutes of all seeds on one thread.
        note: what differs from the paper's protocol, if anything.
        run: the folder of the run records (default: ``name``); entries
            read off one run (the rounds of one pruning run) share it and
            must then have the same settings.
        at_sparsity: for iterative methods, the round compared: the one that
            reached this weight sparsity (``None``: the run's final model).
    """

    name: str
    paper: str
    citation: str
    where: str
    published: float
    tolerance: float
    tolerance_source: str
    settings: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None
    metric: str = "test_acc"
    seeds: tuple[int, ...] = (0, 1, 2)
    cost_min: float = 1.0
    note: str = ""
    run: str = ""
    at_sparsity: float | None = None

    @property
    def folder(self) -> str:
        """The run folder's name (under ``reproduce run --out``)."""
        return self.run or self.name

    def setting(self, key: str) -> Any:
        """The run setting ``key`` as the entry runs it: its own, else its
        preset's, else :class:`~gnnmask.train.RunConfig`'s default
        (:func:`entry_config`, before the method's defaults)."""
        return getattr(entry_config(self), key)

    def summary(self) -> str:
        task = self.setting("task")
        task = "" if task == "node" else f" {task} prediction," if task == "link" \
            else f" {task} classification,"
        return (f"{self.paper} {self.where}:{task} {self.setting('dataset')} "
                f"{self.setting('model')} {self.setting('layers')} layers, "
                f"{self.setting('method')}{self._sparsity_text()}, "
                f"published {self.published:.3f}.")

    def _sparsity_text(self) -> str:
        sparsity = self.at_sparsity if self.at_sparsity is not None else \
            self.setting("sparsity")
        return "" if sparsity is None else f" at weight sparsity {sparsity:.4g}"


def _load(text: str | None = None) -> Registry:
    """The entries of ``text`` (default: the package's ``entries.toml``)."""
    registry = Registry("reproduce entry")
    if text is None:
        text = resources.files(__name__).joinpath("entries.toml").read_text()
    tables = tomllib.loads(text)
    papers = tables.pop("papers")
    for name, t in tables.items():
        t = dict(t)
        ref = papers[t.pop("paper")]
        spread = t.pop("std", None)
        tolerance = t.pop("tolerance", None)
        if tolerance is None:
            tolerance, source = (spread, "the paper's reported std") if spread else \
                (DEFAULT_TOLERANCE, "1.5 points (no spread reported)")
        else:
            source = t.pop("tolerance_source")
        registry.register(Entry(
            name=name, paper=ref["short"], citation=ref["citation"], where=t.pop("where"),
            published=t.pop("published"), tolerance=tolerance, tolerance_source=source,
            preset=t.pop("preset", None), metric=t.pop("metric", "test_acc"),
            seeds=tuple(t.pop("seeds", (0, 1, 2))), cost_min=t.pop("cost_min", 1.0),
            note=t.pop("note", ""), run=t.pop("run", ""),
            at_sparsity=t.pop("at_sparsity", None), settings=t), name=name)
    shared: dict[str, Entry] = {}
    for entry in registry.values():
        other = shared.setdefault(entry.folder, entry)
        if (other.settings, other.preset, other.seeds) != \
                (entry.settings, entry.preset, entry.seeds):
            raise ValueError(f"reproduce entries {other.name!r} and {entry.name!r} share the "
                             f"run {entry.folder!r} but not its settings")
    return registry


#: Every registered published result, by name.
ENTRIES: Registry = _load()


def entry_config(entry: Entry, **changes) -> RunConfig:
    """The run configuration of ``entry`` (``changes`` on top, e.g. ``epochs``
    for a smoke run or ``data_root``)."""
    settings = {**entry.settings, **changes}
    if entry.preset:
        extra = {**entry.settings.get("extra", {}), **changes.get("extra", {})}
        return preset_config(entry.preset, **{**settings, "extra": extra})
    return RunConfig(**settings)


def result_of(entry: Entry, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The compact result of ``entry`` from its seed records: resolved config
    (without the seed), versions, and each seed's final metrics."""
    first = records[0]
    config = {k: v for k, v in first["config"].items() if k not in ("seed", "data_root")}
    per_seed = []
    for r in sorted(records, key=lambda r: r["seed"]):
        row = {"seed": r["seed"], "status": r.get("status", "finished")}
        source = r if entry.at_sparsity is None else _round_at(entry, r)
        metric = r.get("metric") or "acc"
        keys = [f"{split}_{metric}" for split in ("test", "val", "train")] + \
            [k for k in source if k.startswith(("test_hits@", "val_hits@"))]
        for key in (*keys, "best_epoch", "nonzero_params"):
            row[key] = source.get(key)
        for key in ("epoch_time_s", "total_time_s"):
            row[key] = r.get(key)
        if entry.at_sparsity is not None:
            row["round"] = source.get("round")
            for key in ("achieved_sparsity", "edge_sparsity"):
                row[key] = source.get(key)
        elif "achieved_sparsity" in r.get("method", {}):
            row["achieved_sparsity"] = r["method"]["achieved_sparsity"]
        if entry.at_sparsity is None:  # the final model's inference cost (newer records)
            row.update({key: r[key] for key in ("inference_macs", "dense_macs", "model_bytes",
                                                "dense_model_bytes") if key in r})
        if entry.metric not in row:
            row[entry.metric] = r.get(entry.metric)
        per_seed.append(row)
    return {"format": RESULT_FORMAT, "entry": entry.name, "metric": entry.metric,
            "published": entry.published, "tolerance": entry.tolerance, "config": config,
            "method_options": first.get("method_options", {}),
            "versions": first.get("versions", {}), "device": first.get("device"),
            "seeds": per_seed}


def _round_at(entry: Entry, record: dict[str, Any]) -> dict[str, Any]:
    """The round of ``record`` that reached ``entry.at_sparsity``."""
    for rd in record.get("rounds") or []:
        if abs(rd.get("sparsity", -1.0) - entry.at_sparsity) <= 1e-6:
            return rd
    reached = [round(rd.get("sparsity", -1.0), 6) for rd in record.get("rounds") or []]
    raise UserError(f"reproduce entry {entry.name!r}: seed {record['seed']} has no round at "
                    f"sparsity {entry.at_sparsity}; its rounds reached {reached} (add it to "
                    "--extra stops)")


def write_result(entry: Entry, records: list[dict[str, Any]], folder: str | Path) -> Path:
    path = Path(folder) / f"{entry.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, result_of(entry, records))
    return path


def load_result(entry: Entry, folder: str | Path) -> dict[str, Any] | None:
    """The stored result of ``entry`` in ``folder``, or ``None``."""
    path = Path(folder) / f"{entry.name}.json"
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text())
    except ValueError:
        raise UserError(f"result {str(path)!r} is not valid JSON; allowed: a file written by "
                        "`gnnmask reproduce run` (delete it to re-measure)") from None
    return result if result.get("format") == RESULT_FORMAT else None


def stale_setting(entry: Entry, result: dict[str, Any]) -> str | None:
    """The first (by name) setting in which ``result`` was run otherwise than
    ``entry`` now asks (a setting the stored config lacks counts as its default, so a
    field added to RunConfig later leaves old results valid), else ``None``.
    Both sides are compared by :func:`gnnmask.experiments.store.config_diff`,
    the resumed run's own check (seed, device, data root and per-epoch
    history ignored; values compared as Python values, so ``5`` from the
    command line and ``5.0`` from an entry agree), so the records ``reproduce
    run`` accepts give a result that counts."""
    diff = config_diff(result.get("config", {}), resolve_config(entry_config(entry)).to_dict())
    return diff[0] if diff else None


def status(entry: Entry, result: dict[str, Any] | None) -> dict[str, Any]:
    """``{measured, std, seeds, status}``: the mean and sample std of the
    finished seeds' metric and ``reproduced`` (mean within the tolerance),
    ``missed`` or ``not run``; a result run with other settings than the
    entry's current ones counts as ``not run`` (and names the setting as
    ``stale``)."""
    if result is not None and (key := stale_setting(entry, result)) is not None:
        return {"measured": None, "std": None, "seeds": 0, "status": "not run", "stale": key}
    values = [] if result is None else [
        s[entry.metric] for s in result["seeds"]
        if s.get("status") == "finished" and isinstance(s.get(entry.metric), (int, float))]
    if not values:
        return {"measured": None, "std": None, "seeds": 0, "status": "not run"}
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    ok = abs(mean - entry.published) <= entry.tolerance + 1e-12
    return {"measured": mean, "std": std, "seeds": len(values),
            "status": "reproduced" if ok else "missed"}
