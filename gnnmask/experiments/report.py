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
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from gnnmask.errors import UserError
from gnnmask.experiments.runs import _mean_std, summarize
from gnnmask.experiments.store import check_output_dir, read_record
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


def summarize_groups(records: Sequence[dict]) -> list[dict[str, Any]]:
    """One summary per (method, depth): :func:`~gnnmask.experiments.summarize`
    plus ``last`` (mean last-layer metrics) and ``records``; sorted by method
    (first-seen order) and depth."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in records:
        groups.setdefault((r["config"]["method"], r["config"]["layers"]), []).append(r)
    order = {m: i for i, m in enumerate(dict.fromkeys(m for m, _ in groups))}
    metrics = metric_names(records)
    out = []
    for key in sorted(groups, key=lambda k: (order[k[0]], k[1])):
        rs = sorted(groups[key], key=lambda r: r["seed"])
        s = summarize(rs)
        s["records"] = rs
        s["last"] = {m: _fmean((r.get("layers") or [{}])[-1].get(m) for r in rs)
                     for m in metrics}
        out.append(s)
    return out


# -- tables ------------------------------------------------------------------
def _num(v, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _acc(mean: float, std: float, n: int = 2) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.4f}" if n == 1 else f"{mean:.4f} ± {std:.4f}"


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


def accuracy_table(groups: Sequence[dict], markdown: bool = False) -> str:
    """Test accuracy mean ± std: one row per depth, one column per method."""
    methods = _methods(groups)
    cell = {(g["method"], g["layers"]): g for g in groups}
    rows = []
    for depth in sorted({g["layers"] for g in groups}):
        row = [str(depth)]
        for m in methods:
            g = cell.get((m, depth))
            row.append("-" if g is None else
                       _acc(g["test_acc"], g["test_acc_std"], len(g["seeds"])))
        rows.append(row)
    return render_table(["depth", *methods], rows, markdown)


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
def _write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_text(path: Path, text: str) -> Path:
    return _write_atomic(path, lambda p: p.write_text(text))


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig, path: Path) -> Path:
    return _write_atomic(path, lambda p: fig.savefig(p, format="png", dpi=120))


def plot_accuracy(groups: Sequence[dict], path: Path) -> Path:
    fig, ax = _figure()
    depths = sorted({g["layers"] for g in groups})
    for m in _methods(groups):
        gs = sorted((g for g in groups if g["method"] == m), key=lambda g: g["layers"])
        ax.errorbar([g["layers"] for g in gs], [g["test_acc"] for g in gs],
                    yerr=[g["test_acc_std"] for g in gs], marker="o", capsize=3, label=m)
    ax.set_xscale("log", base=2)
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.set_xticks([], minor=True)
    ax.set_xlabel("depth (message-passing layers)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(title="method")
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


def _csv(groups: Sequence[dict], metrics: Sequence[str]) -> str:
    sparsity = any("achieved_sparsity" in g for g in groups)
    header = ["method", "depth", "n_seeds", "seeds", "test_acc_mean", "test_acc_std",
              "val_acc_mean", "val_acc_std", "train_acc_mean",
              *(["achieved_sparsity"] if sparsity else []),
              "params", "nonzero_params", "epoch_time_s", *(f"last_{m}" for m in metrics)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for g in groups:
        w.writerow([g["method"], g["layers"], len(g["seeds"]), ";".join(map(str, g["seeds"])),
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
        g = next(g for g in groups if g["method"] == m)
        # Only mask methods use the sparsity knob (their records carry the
        # achieved sparsity); dense runs ignore a sweep-wide --sparsity.
        masked = g.get("sparsity") is not None and "achieved_sparsity" in g
        extra = f" (sparsity {g['sparsity']})" if masked else ""
        methods.append(m + extra)
    versions = {}
    for r in records:
        for k, v in (r.get("versions") or {}).items():
            versions.setdefault(k, {}).setdefault(v)
    title = (f"{c['dataset']} / {c['model']} depth sweep" if kind == "sweep" else
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
        f"- seeds: {', '.join(map(str, seeds))} ({len(records)} records, device "
        f"{r0.get('device', c.get('device'))})",
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
    run_dir = out_dir
    for tmp in run_dir.glob(".*.tmp"):  # left by a killed report
        if tmp.name.split(".")[1] in ("report", "results", "accuracy_vs_depth") or \
                tmp.name.startswith(".layers_"):
            tmp.unlink(missing_ok=True)
    groups = summarize_groups(records)
    metrics = metric_names(records)
    written: dict[str, Path] = {}
    md = _header(kind, records, groups)

    if kind == "sweep":
        md += ["## Test accuracy", "", "Mean ± standard deviation over seeds; rows are depths.",
               "", accuracy_table(groups, markdown=True), ""]
        if metrics:
            md += ["## Last-layer over-smoothing metrics", "",
                   "Metrics of the last layer's output (the logits), mean over seeds.", "",
                   metrics_table(groups, metrics, markdown=True), ""]
    else:
        rows = [[str(r["seed"]), str(r["best_epoch"]), f"{r['train_acc']:.4f}",
                 f"{r['val_acc']:.4f}", f"{r['test_acc']:.4f}"] for r in records]
        g = groups[0]
        rows.append(["mean ± std", "", _acc(*_mean_std([r["train_acc"] for r in records])),
                     _acc(g["val_acc"], g["val_acc_std"]), _acc(g["test_acc"], g["test_acc_std"])])
        md += ["## Accuracy", "", render_table(["seed", "best epoch", "train", "val", "test"],
                                               rows, markdown=True), ""]
        if metrics:
            md += ["## Per-layer over-smoothing metrics", "",
                   "Layer 0 is the input features; mean over seeds.", "",
                   _layer_table(layer_means(records, metrics), metrics, markdown=True), ""]
    if not metrics:
        md += ["The records hold no per-layer metrics (`layers`), so there are no metric "
               "tables or plots.", ""]
    if unreadable:
        md += ["## Unreadable records", "", "Left out of every table and plot:", "",
               *[f"- `{p}`" for p in unreadable], ""]

    written["results.csv"] = _write_text(run_dir / "results.csv", _csv(groups, metrics))
    plots = []
    if kind == "sweep":
        written["accuracy_vs_depth.png"] = plot_accuracy(groups, run_dir / "accuracy_vs_depth.png")
        plots.append(("Test accuracy against depth", "accuracy_vs_depth.png"))
    if metrics:
        curves = {}
        for m in _methods(groups):
            deepest = max((g for g in groups if g["method"] == m), key=lambda g: g["layers"])
            curves[f"{m} (L{deepest['layers']})"] = layer_means(deepest["records"], metrics)
        for metric in metrics:
            name = f"layers_{metric}.png"
            written[name] = plot_layers(curves, metric, run_dir / name)
            plots.append((f"{METRIC_LABELS.get(metric, metric)} by layer"
                          + (" (deepest model of each method)" if kind == "sweep" else ""), name))
    md += ["## Files", "", "- per-(method, depth) numbers: [results.csv](results.csv)", ""]
    if plots:
        md += ["## Plots", ""]
        for title, name in plots:
            md += [f"### {title}", "", f"![{title}]({name})", ""]
    path = _write_text(run_dir / "report.md", "\n".join(md))
    return {"report.md": path, **written}
