"""The stored reproduce results as a Markdown table and one plot per paper figure.

:func:`entry_row` is one entry with its measurement (what ``reproduce list
--json`` prints); :func:`report_markdown` the table with the recipe notes;
:func:`figure_groups` groups the entries by the paper's table or figure they
come from, and :func:`write_report` writes the Markdown and, for every group of
two or more entries, a PNG of the published values (with their tolerance)
beside gnnmask's means (with their std over seeds).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

from gnnmask.atomic import write_atomic
from gnnmask.experiments.plots import _figure, _save
from gnnmask.reproduce import ENTRIES, Entry, load_result, status

__all__ = ["entry_row", "figure_groups", "report_markdown", "write_report"]


def entry_row(entry: Entry, results: str | Path) -> dict[str, Any]:
    """``entry`` and its stored measurement in ``results``, as one flat dict."""
    return {"name": entry.name, "paper": entry.paper, "citation": entry.citation,
            "where": entry.where, "dataset": entry.setting("dataset"),
            "model": entry.setting("model"), "layers": entry.setting("layers"),
            "method": entry.setting("method"),
            "sparsity": entry.at_sparsity if entry.at_sparsity is not None
            else entry.setting("sparsity"), "preset": entry.preset, "metric": entry.metric,
            "published": entry.published, "tolerance": entry.tolerance,
            "tolerance_source": entry.tolerance_source, "cost_min": entry.cost_min,
            **status(entry, load_result(entry, results)), "note": entry.note}


def figure_groups(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Rows by (paper, table or figure); the figure is ``where`` up to its
    first parenthesis, so points read off one plot group together."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["paper"], row["where"].split(" (")[0]), []).append(row)
    return groups


def report_markdown(results: str | Path, figures: dict[str, str] | None = None) -> str:
    """The stored results as a Markdown table (``figures``: title -> PNG file
    name, linked below the table)."""
    lines = ["| entry | paper | where | published | gnnmask mean +- std (seeds) | "
             "within tolerance | command |", "|---|---|---|---|---|---|---|"]
    notes = []
    for entry in ENTRIES.values():
        r = entry_row(entry, results)
        measured = (f"not run (stale: {r['stale']})" if r.get("stale") else "not run") \
            if r["measured"] is None else \
            f"{r['measured']:.3f} +- {r['std']:.3f} ({r['seeds']})"
        within = {"reproduced": "yes", "missed": "no", "not run": "-"}[r["status"]]
        lines.append(f"| {entry.name} | {entry.paper} | {entry.where} | "
                     f"{entry.published:.3f} +- {entry.tolerance:.3f} | {measured} | {within} | "
                     f"`gnnmask reproduce run {entry.name}` |")
        if entry.note:
            notes.append(f"- **{entry.name}**: {entry.note}")
    text = ["# Published results reproduced by gnnmask", "",
            "Tolerance: the paper's reported std, else 1.5 points; set before measuring. "
            "Sparsity is weight sparsity (the fraction of weights that are zero).", "",
            *lines, "", "## Recipe notes", "", *notes, ""]
    if figures:
        text += ["## Figures", ""]
        text += [f"![{title}]({name})\n" for title, name in figures.items()]
    return "\n".join(text)


def _axis(rows: list[dict[str, Any]]) -> str:
    """What a group's points differ in: ``sparsity``, ``layers`` or ``entry``."""
    for key in ("sparsity", "layers"):
        if len({r[key] for r in rows}) > 1 and all(r[key] is not None for r in rows):
            return key
    return "entry"


def plot_figure(rows: list[dict[str, Any]], title: str, path: Path) -> Path:
    """Published values (open markers, tolerance bars) and gnnmask's means
    (filled, std bars) of one paper figure, one line per dataset/model/method
    against the quantity the points differ in."""
    fig, ax = _figure()
    axis = _axis(rows)
    series: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        label = r["name"] if axis == "entry" else f"{r['dataset']} {r['model']} {r['method']}"
        series.setdefault(label if axis != "entry" else "entries", []).append(r)
    names = [r["name"] for r in rows]
    for i, (label, rs) in enumerate(series.items()):
        rs = sorted(rs, key=lambda r: r[axis] if axis != "entry" else names.index(r["name"]))
        xs = [r[axis] if axis != "entry" else names.index(r["name"]) for r in rs]
        color = f"C{i % 10}"
        ax.errorbar(xs, [r["published"] for r in rs], yerr=[r["tolerance"] for r in rs],
                    marker="o", mfc="none", color=color, capsize=3, linestyle=":",
                    label=f"{label}: published" if axis != "entry" else "published")
        done = [(x, r) for x, r in zip(xs, rs) if r["measured"] is not None]
        if done:
            ax.errorbar([x for x, _ in done], [r["measured"] for _, r in done],
                        yerr=[r["std"] for _, r in done], marker="s", color=color, capsize=3,
                        label=f"{label}: gnnmask" if axis != "entry" else "gnnmask")
    if axis == "layers":
        ax.set_xscale("log", base=2)
        ax.set_xlabel("layers")
    elif axis == "sparsity":
        ax.set_xlabel("weight sparsity")
    else:
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize="small")
    ax.set_ylabel(rows[0]["metric"].replace("_", " "))
    ax.set_title(textwrap.fill(title, 75), fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
    return _save(fig, path)


def write_report(results: str | Path, out: str | Path) -> list[Path]:
    """Write the Markdown table to ``out`` and one PNG per paper figure of two
    or more entries beside it (``<stem>_<paper>_<figure>.png``); returns the
    paths written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [entry_row(e, results) for e in ENTRIES.values()]
    written, figures = [], {}
    for (paper, where), group in figure_groups(rows).items():
        if len(group) < 2:
            continue
        slug = re.sub(r"[^a-z0-9]+", "-", f"{paper} {where}".lower()).strip("-")
        path = out.with_name(f"{out.stem}_{slug}.png")
        written.append(plot_figure(group, f"{paper}, {where}", path))
        figures[f"{paper}, {where}"] = path.name
    written.insert(0, write_atomic(out, report_markdown(results, figures).encode()))
    return written
