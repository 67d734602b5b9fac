"""PNG plots of aggregated records (:mod:`gnnmask.experiments.aggregate`),
written atomically; matplotlib is imported when a plot is drawn."""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from gnnmask.atomic import write_atomic
from gnnmask.experiments.aggregate import metric_label
from gnnmask.experiments.runs import score, score_label, score_std
from gnnmask.experiments.tables import _methods, _several

log = logging.getLogger(__name__)


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
            ax.errorbar([g["layers"] for g in gs], [score(g, "test") for g in gs],
                        yerr=[score_std(g, "test") for g in gs], marker="o", capsize=3,
                        label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.set_xticks([], minor=True)
    ax.set_xlabel("depth (message-passing layers)")
    ax.set_ylabel(f"test {score_label(groups[0])}")
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
            ax.errorbar(xs, [score(g, "test") for g in gs], yerr=[score_std(g, "test") for g in gs],
                        marker="o", markersize=3, capsize=2, label=m)
    for i, g in enumerate(g for g in at if g["sparsity"] is None):
        ax.axhline(score(g, "test"), color=f"C{9 - i}", linestyle="--", label=f"{g['method']}")
    ax.set_xscale("log")
    ax.invert_xaxis()
    shown = sorted(ticks, reverse=True)
    if len(shown) > 8:
        shown = [x for x in shown if any(abs(x - t) < 1e-9 for t in (1.0, 0.5, 0.2, 0.1, 0.05,
                                                                       0.02, 0.01, 0.001))]
    ax.set_xticks(shown, [f"{1 - x:g}" for x in shown])
    ax.set_xticks([], minor=True)
    ax.set_xlabel("weight sparsity (fraction of weights zero; axis: density 1 - s, log scale)")
    ax.set_ylabel(f"test {score_label(groups[0])}")
    ax.set_title(f"depth {depth}")
    ax.grid(alpha=0.3)
    ax.legend(title="method", fontsize="small")
    return _save(fig, path)


def plot_macs(groups: Sequence[dict], path: Path) -> Path | None:
    """Test accuracy against the MACs of one inference pass (log axis), as
    the graph lottery ticket papers draw it: one line per method (and depth,
    where there are several) through its sparsities, methods without a
    sparsity as single points; ``None`` when no group has the MACs."""
    with_cost = [g for g in groups if g.get("inference_macs")]
    if not with_cost:
        return None
    fig, ax = _figure()
    depths = sorted({g["layers"] for g in with_cost})
    for m in _methods(with_cost):
        for depth in depths:
            gs = sorted((g for g in with_cost if g["method"] == m and g["layers"] == depth),
                        key=lambda g: g["inference_macs"])
            if gs:
                label = m if len(depths) == 1 else f"{m} L{depth}"
                ax.errorbar([g["inference_macs"] for g in gs], [score(g, "test") for g in gs],
                            yerr=[score_std(g, "test") for g in gs], marker="o", markersize=3,
                            capsize=2, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("MACs of one full-graph inference pass (kept weights and edges, log scale)")
    ax.set_ylabel(f"test {score_label(groups[0])}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
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
    ax.set_ylabel(metric_label(metric))
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
        ax.plot([0.0, *e["budgets"]], [score(g, "test"), *e["features"]], color=f"C{i % 10}",
                marker="o", markersize=3, label=f"{_label(g)} features")
        ax.plot([0.0, *e["budgets"]], [score(g, "test"), *e["edges"]], color=f"C{i % 10}",
                marker="s", markersize=3, linestyle="--", label=f"{_label(g)} edges")
    ax.set_xlabel("perturbation budget (fraction of nodes / edges)")
    ax.set_ylabel(f"test {score_label(groups[0])}")
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
