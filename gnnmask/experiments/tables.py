"""Text and Markdown tables of aggregated records
(:mod:`gnnmask.experiments.aggregate`)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from gnnmask.experiments.runs import score, score_std
from gnnmask.experiments.store import metric_of

log = logging.getLogger(__name__)


def evaluation_table(groups: Sequence[dict], markdown: bool = False) -> str:
    """Test accuracy, ECE, OOD AUROC and accuracy under perturbation, per group."""
    budgets = next((g["evaluation"]["budgets"] for g in groups
                    if "budgets" in g["evaluation"]), [])
    header = ["method", "depth", "weight sparsity", "test acc", "ECE", "ECE (T-scaled)", "T",
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
    number of seeds that predict one class for every test node and of
    diverged seeds beside it (those are never averaged in)."""
    text = _acc(score(g, "test"), score_std(g, "test"), len(g["seeds"]))
    flat = len(g.get("one_class_seeds") or [])
    if flat:
        text += f" (one class: {flat}/{len(g['seeds'])})"
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
    return render_table(["weight sparsity", *sparse], rows, markdown)


def _macs(v) -> str:
    return "-" if v is None else f"{v / 1e6:,.2f}M" if v >= 1e5 else f"{v:,.0f}"


def _bytes(v) -> str:
    if v is None:
        return "-"
    return f"{v / 2**20:,.2f} MiB" if v >= 2**20 else f"{v / 2**10:,.1f} KiB" \
        if v >= 2**10 else f"{v:,.0f} B"


def _ratio(part, whole) -> str:
    return "-" if part is None or not whole else f"{100 * part / whole:.1f}%"


def cost_table(groups: Sequence[dict], markdown: bool = False) -> str:
    """Test accuracy against inference cost, one row per group that has it:
    MACs of one full-graph pass (kept weights and edges), their share of the
    dense model's, the feature-transformation and propagation parts, the
    stored size and its share of the dense size."""
    rows = [[g["method"], str(g["layers"]),
             "-" if g["sparsity"] is None else f"{g['sparsity']:g}", _cell(g),
             _macs(g.get("inference_macs")), _ratio(g.get("inference_macs"), g.get("dense_macs")),
             _macs(g.get("transform_macs")), _macs(g.get("propagation_macs")),
             _bytes(g.get("model_bytes")), _ratio(g.get("model_bytes"),
                                                  g.get("dense_model_bytes"))]
            for g in groups if g.get("inference_macs") is not None]
    name = metric_of(groups[0]) if groups else "acc"
    return render_table(["method", "depth", "weight sparsity", f"test {name}", "inference MACs",
                         "of dense", "transformation", "propagation", "stored size",
                         "of dense"], rows, markdown)


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
