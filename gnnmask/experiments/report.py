"""Reports of finished runs: Markdown, CSV and PNG plots, from the records alone.

:func:`report` reads a sweep folder (``cells/<method>/L<depth>/seed_<s>.json``,
see :mod:`gnnmask.experiments.sweep`) or a ``gnnmask train`` run folder
(``seed_<s>.json``, see :mod:`gnnmask.experiments.runs`), never trains
anything, and writes into that folder::

    report.md                 header (dataset, model, width, epochs, seeds,
                              versions), accuracy, inference-cost and
                              over-smoothing tables, links to the plots
    results.csv               one row per (method, depth): n_seeds, accuracy
                              mean/std, achieved sparsity (mask methods),
                              the mean inference MACs and stored bytes and
                              the mean last-layer metrics (``last_<metric>``)
    accuracy_vs_depth.png     test accuracy mean ± std against depth (log2
                              axis), one line per method (sweeps only)
    accuracy_vs_macs.png      test accuracy against the MACs of one
                              inference pass (sweeps whose records hold it)
    layers_<metric>.png       each per-layer metric against the layer index
                              for the deepest model of each method

Per-layer metrics are the rows of ``record["layers"]`` (layer 0 = the input
features; for gnnmask models the last row is the output layer, i.e. the
logits); every numeric column other than ``layer`` and ``dim`` counts as a
metric. Records without them give
reports without metric tables and plots. Means are over seeds. Every file is
written atomically.

The numbers come from :mod:`gnnmask.experiments.aggregate`, the tables from
:mod:`gnnmask.experiments.tables`, the plots from
:mod:`gnnmask.experiments.plots`; this module puts them together.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from gnnmask.atomic import write_atomic
from gnnmask.errors import UserError
from gnnmask.experiments.aggregate import (
    layer_means,
    load_records,
    metric_label,
    metric_names,
    summarize_groups,
)
from gnnmask.experiments.plots import (
    plot_accuracy,
    plot_gradient_flow,
    plot_itop,
    plot_layers,
    plot_macs,
    plot_reliability,
    plot_robustness,
    plot_sparsity,
)
from gnnmask.experiments.runs import COST_KEYS, diverged, score, score_label, score_std
from gnnmask.experiments.store import REPORT_OUTPUTS, check_output_dir, metric_of
from gnnmask.experiments.tables import (
    _acc,
    _cell,
    _layer_table,
    _methods,
    _num,
    accuracy_table,
    cost_table,
    evaluation_table,
    metrics_table,
    on_axis,
    render_table,
    sparsity_axis,
    sparsity_table,
)
from gnnmask.train import read_json

log = logging.getLogger(__name__)


# -- writing -----------------------------------------------------------------
def _write_text(path: Path, text: str) -> Path:
    return write_atomic(path, text.encode())


def _csv(groups: Sequence[dict], metrics: Sequence[str]) -> str:
    sparsity = any("achieved_sparsity" in g for g in groups)
    edges = any("edge_sparsity" in g for g in groups)
    header = ["method", "depth", "weight_sparsity", "n_seeds", "seeds", "n_diverged",
              "diverged_seeds", *(f"{split}_{metric_of(groups[0])}_{stat}"
                                  for split, stat in (("test", "mean"), ("test", "std"),
                                                      ("val", "mean"), ("val", "std"),
                                                      ("train", "mean"))),
              *(["achieved_weight_sparsity"] if sparsity else []),
              *(["edge_sparsity"] if edges else []),
              "params", "nonzero_params", "epoch_time_s", *COST_KEYS,
              *(f"last_{m}" for m in metrics)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for g in groups:
        w.writerow([g["method"], g["layers"], "" if g["sparsity"] is None else g["sparsity"],
                    len(g["seeds"]), ";".join(map(str, g["seeds"])),
                    len(g["diverged_seeds"]), ";".join(map(str, g["diverged_seeds"])),
                    score(g, "test"), score_std(g, "test"), score(g, "val"), score_std(g, "val"),
                    score(g, "train"), *([g.get("achieved_sparsity", "")] if sparsity else []),
                    *([g.get("edge_sparsity", "")] if edges else []),
                    g["params"], g["nonzero_params"], g["epoch_time_s"],
                    *(_int(g.get(k)) for k in COST_KEYS),
                    *(g["last"].get(m, "") for m in metrics)])
    return buf.getvalue()


def _int(v) -> str | int:
    """A mean count as a whole number ("" where the records have none)."""
    return "" if v is None else round(v)


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
    names = {"graphs": "graphs", "nodes": "nodes", "edges": "edges", "features": "features",
             "classes": "classes", "train_pos_edges": "training edges",
             "val_pos_edges": "validation edges", "test_pos_edges": "test edges"}
    ds = c["dataset"] + (" (" + ", ".join(f"{stats[k]:,} {v}" for k, v in names.items()
                                          if k in stats) + ")" if stats else "")
    if c.get("task", "node") != "node":
        ds = f"{c['task']} task: {ds}"
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
            md += [f"## Test {score_label(groups[0])} against sparsity, depth {depth}", "",
                   "Mean ± standard deviation over seeds; rows are sparsities (the fraction of "
                   "masked weights removed); iterative methods (imp, ugs) give every row from "
                   "the rounds of one run.", "",
                   sparsity_table(groups, depth, axis, markdown=True), ""]
    if kind == "sweep":
        if len(depths) > 1 or not by_sparsity:
            md += [f"## Test {score_label(groups[0])}", "", "Mean ± standard deviation over "
                   "seeds; rows are "
                   "depths.", "", accuracy_table(on_axis(groups, axis), markdown=True), ""]
        if metrics:
            md += ["## Last-layer over-smoothing metrics", "",
                   "Metrics of the last layer's output (the logits), mean over seeds.", "",
                   metrics_table(groups, metrics, markdown=True), ""]
    else:
        rows = [[str(r["seed"]), str(r["best_epoch"]), _acc(score(r, "train"), 0.0, 1),
                 _acc(score(r, "val"), 0.0, 1), _acc(score(r, "test"), 0.0, 1),
                 "diverged" if diverged(r) else "finished"] for r in records]
        g = groups[0]
        rows.append(["mean ± std", "", _acc(score(g, "train"), score_std(g, "train")),
                     _acc(score(g, "val"), score_std(g, "val")), _cell(g),
                     f"over {len(g['seeds'])} finished"])
        md += [f"## {score_label(groups[0]).capitalize()}", "",
               render_table(["seed", "best epoch", "train", "val", "test", "status"], rows,
                            markdown=True), ""]
        if metrics:
            md += ["## Per-layer over-smoothing metrics", "",
                   "Layer 0 is the input features; mean over seeds.", "",
                   _layer_table(layer_means(records, metrics), metrics, markdown=True), ""]
    if not metrics:
        md += ["The records hold no per-layer metrics (`layers`), so there are no metric "
               "tables or plots.", ""]
    if any(g.get("inference_macs") is not None for g in groups):
        md += ["## Inference cost", "",
               "Multiply-accumulates of one full-graph inference pass, counted from the "
               "operations it runs: feature transformations with the kept weights only, "
               "propagation over the kept edges only, against the same model dense on the "
               "whole graph; stored size: packed masks (1 bit per masked weight) plus the "
               "kept values of trained weights (untrained tickets: the masks alone, the "
               "weights come back from the seed). Means over seeds.", "",
               cost_table(groups, markdown=True), ""]
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
               render_table(["method", "depth", "weight sparsity", "seed", "epoch", "reason",
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
    label = score_label(groups[0])
    if kind == "sweep" and len(depths) > 1:
        written["accuracy_vs_depth.png"] = plot_accuracy(on_axis(groups, axis),
                                                         run_dir / "accuracy_vs_depth.png")
        plots.append((f"Test {label} against depth", "accuracy_vs_depth.png"))
    if by_sparsity:
        for depth in depths:
            name = f"accuracy_vs_sparsity_L{depth}.png"
            written[name] = plot_sparsity(groups, depth, run_dir / name)
            plots.append((f"Test {label} against sparsity, depth {depth}", name))
    path = plot_macs(groups, run_dir / "accuracy_vs_macs.png") if kind == "sweep" else None
    if path is not None:
        written["accuracy_vs_macs.png"] = path
        plots.append((f"Test {label} against inference MACs", "accuracy_vs_macs.png"))
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
            plots.append((f"{metric_label(metric)} by layer"
                          + (" (deepest model of each method)" if kind == "sweep" else ""), name))
    md += ["## Files", "", "- per-(method, depth, sparsity) numbers: [results.csv](results.csv)",
           ""]
    if plots:
        md += ["## Plots", ""]
        for title, name in plots:
            md += [f"### {title}", "", f"![{title}]({name})", ""]
    path = _write_text(run_dir / "report.md", "\n".join(md))
    return {"report.md": path, **written}
