"""Reports of finished runs: Markdown, CSV and PNG plots, from the records alone.

:func:`report` reads a sweep folder (``cells/<method>/L<depth>/seed_<s>.json``,
see :mod:`gnnmask.experiments.sweep`) or a ``gnnmask train`` run folder
(``seed_<s>.json``, see :mod:`gnnmask.experiments.runs`), never trains
anything, and writes into that folder::

    report.md                 header (dataset, model, width, epochs, seeds,
                              versions), accuracy and over-smoothing tables,
                              links to the plots
    results.csv               one row per (method, depth): n_seeds, accuracy
                              mean/std, achieved sparsity (mask methods) and
                              the mean last-layer metrics (``last_<metric>``)
    accuracy_vs_depth.png     test accuracy mean ± std against depth (log2
                              axis), one line per method (sweeps only)
    layers_<metric>.png       each per-layer metric against the layer index
                              for the deepest model of each method

Per-layer metrics are the rows of ``record["layers"]`` (layer 0 = the input
features; for gnnmask models the last row is the output layer, i.e. the
logits); every numeric column other than ``layer`` and ``dim`` counts as a
metric. Records without them give
reports without metric tables and plots. Means are over seeds. Every file is
written atomically.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from gnnmask.atomic import write_atomic
from gnnmask.errors import UserError
from gnnmask.experiments.runs import diverged, summarize
from gnnmask.experiments.store import REPORT_OUTPUTS, check_output_dir, read_record
from gnnmask.experiments.sweep import load_cells
from gnnmask.train import read_json

log = logging.getLogger(__name__)

#: Display names of the known metrics (others are shown by their key).
METRIC_LABELS = {
    "mad": "MAD",
    "mad_gap": "MADGap",
    "dirichlet": "Dirichlet energy",
    "dirichlet_normalized": "normalised Dirichlet energy",
    "smv": "SMV",
    "group_distance_ratio": "group distance ratio",
    "effective_rank": "effective rank",
    "numerical_rank": "numerical rank",
}
_NOT_METRICS = {"layer", "dim"}


# -- reading -----------------------------------------------------------------
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
                        **{k: rd[k] for k in ("train_acc", "val_acc", "test_acc", "best_epoch",
                                              "nonzero_params") if k in rd},
                        "method": {**r.get("method", {}),
                                   "achieved_sparsity": rd.get("achieved_sparsity")},
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


def evaluation_table(groups: Sequence[dict], markdown: bool = False) -> str:
    """Test accuracy, ECE, OOD AUROC and accuracy under perturbation, per group."""
    budgets = next((g["evaluation"]["budgets"] for g in groups
                    if "budgets" in g["evaluation"]), [])
    header = ["method", "depth", "sparsity", "test acc", "ECE", "ECE (T-scaled)", "T",
              "OOD AUROC",
              *[f"features {b:g}" for b in budgets], *[f"edges {b:g}" for b in budgets]]
    rows = []
    for g in groups:
        e = g["evaluation"]
        if not e:
            continue
        rows.append([g["method"], str(g["layers"]),
                     "-" if g["sparsity"] is None else f"{g['sparsity']:g}",
                     _cell(g),
                     _num(e.get("ece")), _num(e.get("ece_scaled")),
                     _num(e.get("temperature"), 3), _num(e.get("ood_auroc")),
                     *[_num(v) for v in e.get("features", [None] * len(budgets))],
                     *[_num(v) for v in e.get("edges", [None] * len(budgets))]])
    return render_table(header, rows, markdown)


# -- tables ------------------------------------------------------------------
def _num(v, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _acc(mean: float, std: float, n: int = 2) -> str:
    if mean is None or math.isnan(mean):
        return "-"
    return f"{mean:.4f}" if n == 1 else f"{mean:.4f} ± {std:.4f}"


def _cell(g: dict) -> str:
    """A group's test accuracy, mean ± std over its finished seeds, with the
    number of diverged seeds beside it (they are never averaged in)."""
    text = _acc(g["test_acc"], g["test_acc_std"], len(g["seeds"]))
    lost = len(g.get("diverged_seeds") or [])
    if not lost:
        return text
    n = lost + len(g["seeds"])
    return f"diverged ({lost}/{n})" if text == "-" else f"{text} ({lost}/{n} diverged)"


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]],
                 markdown: bool = False) -> str:
    """A Markdown table (right-aligned but the first column) or a fixed-width one."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]

    def line(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _methods(groups) -> list[str]:
    return list(dict.fromkeys(g["method"] for g in groups))


def _several(groups: Sequence[dict]) -> set[str]:
    """Methods that appear at several sparsities."""
    return {m for m in _methods(groups)
            if len({g["sparsity"] for g in groups if g["method"] == m}) > 1}


def on_axis(groups: Sequence[dict], sparsities: Sequence[float] | None) -> list[dict]:
    """The groups at a sweep's own sparsities (and those without one): drops
    the intermediate rounds of iterative methods."""
    if not sparsities:
        return list(groups)
    return [g for g in groups if g["sparsity"] is None
            or any(abs(g["sparsity"] - s) < 1e-9 for s in sparsities)]


def accuracy_table(groups: Sequence[dict], markdown: bool = False) -> str:
    """Test accuracy mean ± std: one row per depth, one column per method
    (per method and sparsity where a method ran at several)."""
    several = _several(groups)
    columns = list(dict.fromkeys(
        (g["method"], g["sparsity"] if g["method"] in several else None)
        for g in sorted(groups, key=lambda g: -1 if g["sparsity"] is None else g["sparsity"])))
    columns.sort(key=lambda c: _methods(groups).index(c[0]))
    cell = {(g["method"], g["sparsity"] if g["method"] in several else None, g["layers"]): g
            for g in groups}
    rows = []
    for depth in sorted({g["layers"] for g in groups}):
        row = [str(depth)]
        for m, s in columns:
            g = cell.get((m, s, depth))
            row.append("-" if g is None else _cell(g))
        rows.append(row)
    header = [m if s is None else f"{m} s={s:g}" for m, s in columns]
    return render_table(["depth", *header], rows, markdown)


def sparsity_axis(groups: Sequence[dict]) -> bool:
    """Whether some method was run at several sparsities at one depth."""
    seen: dict[tuple[str, int], set] = {}
    for g in groups:
        if g.get("sparsity") is not None:
            seen.setdefault((g["method"], g["layers"]), set()).add(g["sparsity"])
    return any(len(v) > 1 for v in seen.values())


def sparsity_table(groups: Sequence[dict], depth: int, sparsities: Sequence[float] | None = None,
                   markdown: bool = False) -> str:
    """Test accuracy mean ± std at ``depth``: one row per sparsity (the
    given ones, else every one seen), one column per method run at a
    sparsity; methods without one (dense) are a last row, ``reference``."""
    at = [g for g in groups if g["layers"] == depth]
    sparse = [m for m in _methods(at) if any(g["sparsity"] is not None
                                             for g in at if g["method"] == m)]
    refs = [g for g in at if g["sparsity"] is None]
    cell = {(g["method"], g["sparsity"]): g for g in at}
    levels = sorted(sparsities) if sparsities else sorted(
        {g["sparsity"] for g in at if g["sparsity"] is not None})
    rows = []
    for s in levels:
        row = [f"{s:g}"]
        for m in sparse:
            g = cell.get((m, s))
            row.append("-" if g is None else _cell(g))
        rows.append(row)
    for g in refs:
        rows.append([f"{g['method']} (no mask)",
                     *[_cell(g)] * len(sparse)])
    return render_table(["sparsity", *sparse], rows, markdown)


def metrics_table(groups: Sequence[dict], metrics: Sequence[str] | None = None,
                  markdown: bool = False) -> str:
    """Mean last-layer metrics: one row per (depth, method)."""
    if metrics is None:
        metrics = list(dict.fromkeys(m for g in groups for m in g["last"]))
    rows = [[str(g["layers"]), g["method"], *(_num(g["last"].get(m)) for m in metrics)]
            for g in sorted(groups, key=lambda g: g["layers"])]
    return render_table(["depth", "method", *metrics], rows, markdown)


def _layer_table(rows: Sequence[dict], metrics: Sequence[str], markdown: bool) -> str:
    body = [[str(r["layer"]), str(r["name"]), _num(r["dim"]), *(_num(r[m]) for m in metrics)]
            for r in rows]
    return render_table(["layer", "name", "dim", *metrics], body, markdown)


# -- writing -----------------------------------------------------------------
def _write_text(path: Path, text: str) -> Path:
    return write_atomic(path, text.encode())


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig, path: Path) -> Path:
    return write_atomic(path, lambda p: fig.savefig(p, format="png", dpi=120))


def plot_accuracy(groups: Sequence[dict], path: Path) -> Path:
    fig, ax = _figure()
    depths = sorted({g["layers"] for g in groups})
    several = _several(groups)
    for m in _methods(groups):
        for sp in sorted({g["sparsity"] for g in groups if g["method"] == m},
                         key=lambda x: -1 if x is None else x):
            gs = sorted((g for g in groups if g["method"] == m and g["sparsity"] == sp),
                        key=lambda g: g["layers"])
            label = f"{m} s={sp:g}" if m in several and sp is not None else m
            ax.errorbar([g["layers"] for g in gs], [g["test_acc"] for g in gs],
                        yerr=[g["test_acc_std"] for g in gs], marker="o", capsize=3,
                        label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.set_xticks([], minor=True)
    ax.set_xlabel("depth (message-passing layers)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(title="method")
    return _save(fig, path)


def plot_sparsity(groups: Sequence[dict], depth: int, path: Path) -> Path:
    """Test accuracy against density (``1 - sparsity``, log axis, sparser to
    the right), one line per method run at a sparsity; methods without one
    (dense) as horizontal lines."""
    fig, ax = _figure()
    at = [g for g in groups if g["layers"] == depth]
    ticks = set()
    for m in _methods(at):
        gs = sorted((g for g in at if g["method"] == m and g["sparsity"] is not None),
                    key=lambda g: g["sparsity"])
        gs = [g for g in gs if g["sparsity"] < 1.0 and (1.0 - g["sparsity"]) > 0]
        if gs:
            xs = [1.0 - g["sparsity"] for g in gs]
            ticks.update(xs)
            ax.errorbar(xs, [g["test_acc"] for g in gs], yerr=[g["test_acc_std"] for g in gs],
                        marker="o", markersize=3, capsize=2, label=m)
    for i, g in enumerate(g for g in at if g["sparsity"] is None):
        ax.axhline(g["test_acc"], color=f"C{9 - i}", linestyle="--", label=f"{g['method']}")
    ax.set_xscale("log")
    ax.invert_xaxis()
    shown = sorted(ticks, reverse=True)
    if len(shown) > 8:
        shown = [x for x in shown if any(abs(x - t) < 1e-9 for t in (1.0, 0.5, 0.2, 0.1, 0.05,
                                                                       0.02, 0.01, 0.001))]
    ax.set_xticks(shown, [f"{1 - x:g}" for x in shown])
    ax.set_xticks([], minor=True)
    ax.set_xlabel("sparsity (density on a log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"depth {depth}")
    ax.grid(alpha=0.3)
    ax.legend(title="method", fontsize="small")
    return _save(fig, path)


def plot_layers(curves: dict[str, list[dict]], metric: str, path: Path) -> Path:
    """``metric`` against layer index, one line per label in ``curves``."""
    fig, ax = _figure()
    values = []
    for label, rows in curves.items():
        xs = [r["layer"] for r in rows]
        ys = [r[metric] for r in rows]
        values += [y for y in ys if math.isfinite(y)]
        ax.plot(xs, ys, marker="o", markersize=3, label=label)
    if values and min(values) > 0 and ("dirichlet" in metric or max(values) > 1e3 * min(values)):
        ax.set_yscale("log")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("layer (0 = input features)")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_itop(groups: Sequence[dict], path: Path) -> Path | None:
    """The exploration rate ``R_s`` (fraction of the masked weights ever
    active, Liu et al. 2021) against epoch, mean over seeds, for every group
    whose records hold it (dynamic sparse training); ``None`` if none do."""
    fig, ax = _figure()
    drawn = False
    for g in groups:
        rows = [[r.get("itop_rate") for r in rec.get("history", [])] for rec in g["records"]]
        rows = [r for r in rows if r and all(v is not None for v in r)]
        if not rows:
            continue
        n = min(len(r) for r in rows)
        mean = [statistics.fmean(r[i] for r in rows) for i in range(n)]
        label = f"{g['method']} L{g['layers']}" + (
            f" s={g['sparsity']:g}" if g["sparsity"] is not None else "")
        ax.plot(range(n), mean, label=label)
        drawn = True
    if not drawn:
        return None
    ax.set_xlabel("epoch")
    ax.set_ylabel("R_s: fraction of masked weights ever active")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def plot_gradient_flow(record: dict, path: Path) -> Path | None:
    """Gradient norm per weight tensor (and overall) against epoch, from a
    record's ``gradient_flow`` (``--grad-flow-every``); ``None`` without."""
    flows = record.get("gradient_flow") or []
    if not flows:
        return None
    fig, ax = _figure()
    epochs = list(range(len(flows)))
    names = [n for n in flows[0]["per_layer"] if not n.endswith(".bias")]
    for i, name in enumerate(names):
        ax.plot(epochs, [f["per_layer"].get(name, float("nan")) for f in flows],
                color=f"C{i % 10}", alpha=0.8, linewidth=1,
                label=name if len(names) <= 10 else None)
    ax.plot(epochs, [f["total"] for f in flows], color="black", linewidth=2, label="total")
    ax.set_yscale("log")
    ticks = sorted(set(range(0, len(flows), max(1, len(flows) // 8))))
    ax.set_xticks(ticks, [str(flows[i]["epoch"] + 1) for i in ticks])
    ax.set_xlabel("epoch (0: at initialisation)")
    ax.set_ylabel("gradient L2 norm")
    c = record["config"]
    ax.set_title(f"{c['method']} L{c['layers']}" + (
        f" s={c['sparsity']:g}" if c.get("sparsity") is not None else "") + f" seed {c['seed']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
    return _save(fig, path)


def _label(g: dict) -> str:
    return f"{g['method']} L{g['layers']}" + (
        f" s={g['sparsity']:g}" if g["sparsity"] is not None else "")


def plot_robustness(groups: Sequence[dict], path: Path) -> Path:
    """Test accuracy against the perturbation budget: features (solid) and
    edges (dashed), one colour per group."""
    fig, ax = _figure()
    for i, g in enumerate(g for g in groups if "budgets" in g["evaluation"]):
        e = g["evaluation"]
        ax.plot([0.0, *e["budgets"]], [g["test_acc"], *e["features"]], color=f"C{i % 10}",
                marker="o", markersize=3, label=f"{_label(g)} features")
        ax.plot([0.0, *e["budgets"]], [g["test_acc"], *e["edges"]], color=f"C{i % 10}",
                marker="s", markersize=3, linestyle="--", label=f"{_label(g)} edges")
    ax.set_xlabel("perturbation budget (fraction of nodes / edges)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
    return _save(fig, path)


def plot_reliability(groups: Sequence[dict], path: Path) -> Path:
    """Reliability diagram: accuracy against confidence per bin, one line per group."""
    fig, ax = _figure()
    ax.plot([0, 1], [0, 1], color="gray", linestyle=":", label="calibrated")
    for g in groups:
        bins = [b for b in g["evaluation"].get("bins", []) if b["count"]]
        if bins:
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o",
                    markersize=3, label=f"{_label(g)} (ECE {g['evaluation']['ece']:.3f})")
    ax.set_xlabel("confidence (max softmax)")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
    return _save(fig, path)


def _csv(groups: Sequence[dict], metrics: Sequence[str]) -> str:
    sparsity = any("achieved_sparsity" in g for g in groups)
    header = ["method", "depth", "sparsity", "n_seeds", "seeds", "n_diverged",
              "diverged_seeds", "test_acc_mean",
              "test_acc_std",
              "val_acc_mean", "val_acc_std", "train_acc_mean",
              *(["achieved_sparsity"] if sparsity else []),
              "params", "nonzero_params", "epoch_time_s", *(f"last_{m}" for m in metrics)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for g in groups:
        w.writerow([g["method"], g["layers"], "" if g["sparsity"] is None else g["sparsity"],
                    len(g["seeds"]), ";".join(map(str, g["seeds"])),
                    len(g["diverged_seeds"]), ";".join(map(str, g["diverged_seeds"])),
                    g["test_acc"], g["test_acc_std"], g["val_acc"], g["val_acc_std"],
                    g["train_acc"], *([g.get("achieved_sparsity", "")] if sparsity else []),
                    g["params"], g["nonzero_params"], g["epoch_time_s"],
                    *(g["last"].get(m, "") for m in metrics)])
    return buf.getvalue()


def _values(records: Sequence[dict], key: str) -> str:
    """``"v"`` when all records agree, else ``"v1 (method1), v2 (method2)"``."""
    by_method = {}
    for r in records:
        by_method.setdefault(r["config"]["method"], set()).add(repr(r["config"].get(key)))
    values = {v for vs in by_method.values() for v in vs}
    if len(values) == 1:
        return values.pop().strip("'")
    return ", ".join(f"{'/'.join(sorted(vs))} ({m})" for m, vs in by_method.items())


def _header(kind: str, records: Sequence[dict], groups: Sequence[dict]) -> list[str]:
    c, r0 = records[0]["config"], records[0]
    stats = r0.get("dataset_stats") or {}
    ds = c["dataset"] + (f" ({stats['nodes']:,} nodes, {stats['edges']:,} edges, "
                         f"{stats['features']:,} features, {stats['classes']} classes)"
                         if stats else "")
    if c.get("split"):
        ds += f", split {c['split']}"
    depths = sorted({g["layers"] for g in groups})
    seeds = sorted({r["seed"] for r in records})
    methods = []
    for m in _methods(groups):
        levels = sorted({r["config"].get("sparsity") for r in records
                         if r["config"]["method"] == m} - {None})
        rounds = any(r.get("rounds") for r in records if r["config"]["method"] == m)
        extra = (f" (sparsity {', '.join(f'{x:g}' for x in levels)}"
                 + (", with every pruning round" if rounds else "") + ")") if levels else ""
        methods.append(m + extra)
    versions = {}
    for r in records:
        for k, v in (r.get("versions") or {}).items():
            versions.setdefault(k, {}).setdefault(v)
    axes = [a for a, n in (("depth", len(depths)), ("sparsity", len(set(
        r["config"].get("sparsity") for r in records) - {None}))) if n > 1]
    title = (f"{c['dataset']} / {c['model']} {' x '.join(axes) or 'one-cell'} sweep"
             if kind == "sweep" else
             f"{c['dataset']} / {c['model']} x{c['layers']} / {c['method']}")
    return [
        f"# gnnmask report: {title}",
        "",
        f"- dataset: {ds}",
        f"- model: {c['model']}, width {c['hidden']}, depth{'s' if len(depths) > 1 else ''} "
        f"{', '.join(map(str, depths))}, norm {c.get('norm')}, residual {c.get('residual')}",
        f"- methods: {', '.join(methods)}",
        f"- training: {_values(records, 'epochs')} epochs, {c.get('optimizer')}, lr "
        f"{_values(records, 'lr')}, weight decay {_values(records, 'weight_decay')}, dropout "
        f"{_values(records, 'dropout')}, patience {c.get('patience')}",
        f"- seeds: {', '.join(map(str, seeds))} ({len(records)} records"
        + (f", {lost} of them diverged" if (lost := sum(map(diverged, records))) else "")
        + f", device {r0.get('device', c.get('device'))})",
        "- versions: " + ", ".join(f"{k} {' / '.join(versions[k])}" for k in
                                   ("gnnmask", "torch", "torch_geometric", "python")
                                   if k in versions),
        "",
    ]


def report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> dict[str, Path]:
    """Write ``report.md``, ``results.csv`` and the PNG plots of the records
    in ``run_dir`` into ``out`` (default: ``run_dir`` itself).

    Record files that do not parse are left out, named in ``report.md`` and
    logged. Returns ``{file name: path}`` of everything written (see the
    module docstring).
    """
    run_dir = Path(run_dir)
    kind, records, unreadable = load_records(run_dir)
    for path in unreadable:
        log.warning("%s is not a readable record; left out of the report", path)
    out_dir = run_dir if out is None else Path(out)
    try:
        check_output_dir(out_dir, what="--out" if out is not None else "report folder")
    except UserError as e:
        raise UserError(f"{e}; pass --out DIR to write the report elsewhere" if out is None
                        else str(e)) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        axis = read_json(run_dir / "sweep.json").get("sparsities") if kind == "sweep" else None
    except (OSError, ValueError, AttributeError):
        axis = None
    run_dir = out_dir
    for pattern in REPORT_OUTPUTS:  # temporary files left by a killed report
        for tmp in run_dir.glob(f".{pattern}.*.tmp"):
            tmp.unlink(missing_ok=True)
    groups = summarize_groups(records)
    metrics = metric_names(records)
    written: dict[str, Path] = {}
    md = _header(kind, records, groups)

    by_sparsity = sparsity_axis(groups)
    depths = sorted({g["layers"] for g in groups})
    if by_sparsity:
        for depth in depths:
            md += [f"## Test accuracy against sparsity, depth {depth}", "",
                   "Mean ± standard deviation over seeds; rows are sparsities (the fraction of "
                   "masked weights removed); iterative methods (imp, ugs) give every row from "
                   "the rounds of one run.", "",
                   sparsity_table(groups, depth, axis, markdown=True), ""]
    if kind == "sweep":
        if len(depths) > 1 or not by_sparsity:
            md += ["## Test accuracy", "", "Mean ± standard deviation over seeds; rows are "
                   "depths.", "", accuracy_table(on_axis(groups, axis), markdown=True), ""]
        if metrics:
            md += ["## Last-layer over-smoothing metrics", "",
                   "Metrics of the last layer's output (the logits), mean over seeds.", "",
                   metrics_table(groups, metrics, markdown=True), ""]
    else:
        rows = [[str(r["seed"]), str(r["best_epoch"]), _acc(r["train_acc"], 0.0, 1),
                 _acc(r["val_acc"], 0.0, 1), _acc(r["test_acc"], 0.0, 1),
                 "diverged" if diverged(r) else "finished"] for r in records]
        g = groups[0]
        rows.append(["mean ± std", "", _acc(g["train_acc"], g["train_acc_std"]),
                     _acc(g["val_acc"], g["val_acc_std"]), _cell(g),
                     f"over {len(g['seeds'])} finished"])
        md += ["## Accuracy", "", render_table(["seed", "best epoch", "train", "val", "test",
                                                "status"], rows, markdown=True), ""]
        if metrics:
            md += ["## Per-layer over-smoothing metrics", "",
                   "Layer 0 is the input features; mean over seeds.", "",
                   _layer_table(layer_means(records, metrics), metrics, markdown=True), ""]
    if not metrics:
        md += ["The records hold no per-layer metrics (`layers`), so there are no metric "
               "tables or plots.", ""]
    if any(g["evaluation"] for g in groups):
        md += ["## Evaluation beyond accuracy", "",
               "Expected calibration error (15 bins) on the test nodes, as trained and after "
               "temperature scaling (T fitted on the validation nodes); OOD AUROC of the "
               "negative maximum softmax, test nodes of the held-out classes against the "
               "others; test accuracy with a fraction of the nodes' features randomised or "
               "of the edges rewired (means over seeds).", "",
               evaluation_table(groups, markdown=True), ""]
    lost = [r for g in groups for r in g["diverged_records"] if "round_of" not in r]
    if lost:
        md += ["## Diverged runs", "", "The loss or the outputs became non-finite; each run "
               "keeps the metrics of its best finite epoch (restored where one was selectable) "
               "and is left out of the means above.", "",
               render_table(["method", "depth", "sparsity", "seed", "epoch", "reason",
                             "best finite state"],
                            [[r["config"]["method"], str(r["config"]["layers"]),
                              _num(r["config"].get("sparsity")), str(r["seed"]),
                              str(r["diverged"]["epoch"]) + (f" ({r['diverged']['phase']})"
                                                             if "phase" in r["diverged"] else ""),
                              r["diverged"]["reason"],
                              "restored" if r["diverged"]["restored"] else "none"]
                             for r in lost], markdown=True), ""]
    if unreadable:
        md += ["## Unreadable records", "", "Left out of every table and plot:", "",
               *[f"- `{p}`" for p in unreadable], ""]

    written["results.csv"] = _write_text(run_dir / "results.csv", _csv(groups, metrics))
    plots = []
    if kind == "sweep" and len(depths) > 1:
        written["accuracy_vs_depth.png"] = plot_accuracy(on_axis(groups, axis),
                                                         run_dir / "accuracy_vs_depth.png")
        plots.append(("Test accuracy against depth", "accuracy_vs_depth.png"))
    if by_sparsity:
        for depth in depths:
            name = f"accuracy_vs_sparsity_L{depth}.png"
            written[name] = plot_sparsity(groups, depth, run_dir / name)
            plots.append((f"Test accuracy against sparsity, depth {depth}", name))
    evaluated = [g for g in groups if g["evaluation"]]
    if any("budgets" in g["evaluation"] for g in evaluated):
        written["robustness.png"] = plot_robustness(evaluated, run_dir / "robustness.png")
        plots.append(("Accuracy under feature and edge perturbations", "robustness.png"))
    if any("bins" in g["evaluation"] for g in evaluated):
        written["reliability.png"] = plot_reliability(evaluated, run_dir / "reliability.png")
        plots.append(("Reliability diagram (15 bins)", "reliability.png"))
    path = plot_itop(groups, run_dir / "itop_rate.png")
    if path is not None:
        written["itop_rate.png"] = path
        plots.append(("In-time over-parameterisation rate against epoch", "itop_rate.png"))
    for m in _methods(groups):
        traced = [r for g in groups if g["method"] == m for r in g["records"]
                  if r.get("gradient_flow")]
        if traced:
            deepest = max(traced, key=lambda r: (r["config"]["layers"],
                                                 r["config"].get("sparsity") or 0.0))
            name = f"gradient_flow_{m}.png"
            written[name] = plot_gradient_flow(deepest, run_dir / name)
            plots.append((f"Gradient norm per layer, {m} (deepest model)", name))
    if metrics:
        curves = {}
        for m in _methods(groups):
            traced = [g for g in groups if g["method"] == m
                      and any(r.get("layers") for r in g["records"])]
            if not traced:
                continue
            deepest = max(traced, key=lambda g: (g["layers"], g["sparsity"] or 0.0))
            label = f"{m} (L{deepest['layers']}" + (
                f", s={deepest['sparsity']:g})" if by_sparsity and deepest["sparsity"] is not None
                else ")")
            curves[label] = layer_means([r for r in deepest["records"] if r.get("layers")],
                                        metrics)
        for metric in metrics:
            name = f"layers_{metric}.png"
            written[name] = plot_layers(curves, metric, run_dir / name)
            plots.append((f"{METRIC_LABELS.get(metric, metric)} by layer"
                          + (" (deepest model of each method)" if kind == "sweep" else ""), name))
    md += ["## Files", "", "- per-(method, depth, sparsity) numbers: [results.csv](results.csv)",
           ""]
    if plots:
        md += ["## Plots", ""]
        for title, name in plots:
            md += [f"### {title}", "", f"![{title}]({name})", ""]
    path = _write_text(run_dir / "report.md", "\n".join(md))
    return {"report.md": path, **written}
