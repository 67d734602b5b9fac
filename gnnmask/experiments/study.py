"""Studies: many sweeps read side by side (one per dataset and backbone), and
the statement of where tickets beat, match or fall below the trained network.

A study folder holds sweep folders anywhere below it (``scripts/depth_sparsity.sh``
writes ``<dataset>/<backbone>/``, each a :func:`~gnnmask.experiments.sweep`
folder). :func:`study_report` reads their records, never trains, and writes::

    study.md                  per dataset: a table of every backbone and depth,
                              and the statement of item 5 (beats / matches /
                              below, and over-smoothing)
    study.csv                 one row per (dataset, backbone, depth)
    study_<dataset>.png       test accuracy against depth, one panel per
                              backbone

How a row is judged (:func:`compare`): at each depth the trained network
(``dense``) is compared with the ticket (``ugt``) and with sparse training
(``rigl``) each at the weight sparsity whose mean *validation* accuracy is
best, so the choice never looks at test accuracy (the validation means
compared are over the seeds every sparsity of the row has finished; a tie
goes to the lowest sparsity: :func:`best_by_validation`). The ticket ``beats`` the
trained network when its mean test accuracy is more than :data:`MATCH` above
dense's, ``matches`` it within :data:`MATCH`, and is ``below`` when more than
:data:`MATCH` under it. Where both sides have two seeds or more, a difference
beyond :data:`MATCH` must also pass Welch's t-test over the seeds at level
:data:`ALPHA` (:func:`welch_p`); one that does not is ``within noise``.
Over-smoothing compares the last hidden state (the input of the output layer;
the logits for backbones that trace none, such as APPNP's propagation) of that
ticket and of the trained network by the two scale-free measures: ``less
smoothed`` when the ticket's mean average distance (MAD) and effective rank
are both higher, ``more smoothed`` when both are lower, ``mixed`` otherwise;
with two seeds or more on both sides each of the two differences must pass
the same test, else ``no measurable difference``. A last hidden state that is
exactly zero in some seed (every unit of a layer pruned or dead: a ticket can
cut whole layers at high sparsity, while JKNet's or DAGNN's skip to the
output still carries the earlier layers) has no direction, so its MAD and
rank of 0 say nothing of smoothing: such a cell is ``zero state``.
The Dirichlet energy is shown beside them with the mean norm, since it grows
with the scale of the states (a ticket cannot rescale its frozen weights, a
trained network can). Means are over the seeds each cell has; the number of
seeds is in every row. A cell whose network predicts one class for every test
node (the record's ``predicted_classes``) is flagged in the table and the
statement: its accuracy is the share of that class, not something learnt.
"""

from __future__ import annotations

import csv
import io
import math
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gnnmask.atomic import write_atomic
from gnnmask.errors import UserError
from gnnmask.experiments.aggregate import layer_means, load_records, summarize_groups
from gnnmask.experiments.runs import one_class, score, score_std
from gnnmask.experiments.store import check_output_dir

#: Accuracy difference (a fraction) within which a ticket matches the trained network.
MATCH = 0.01
#: Significance level of the test over seeds (:func:`welch_p`) that a
#: difference beyond :data:`MATCH`, or in over-smoothing, must pass.
ALPHA = 0.05
#: The per-layer metrics the study shows (higher: less smoothed; the first two,
#: scale-free, decide the over-smoothing verdict).
SMOOTHING = ("mad", "effective_rank", "dirichlet", "norm")
TICKET, SPARSE, TRAINED = "ugt", "rigl", "dense"


def find_sweeps(root: str | os.PathLike) -> list[Path]:
    """Every sweep folder (one holding ``sweep.json``) below ``root``, sorted."""
    return sorted(p.parent for p in Path(root).glob("**/sweep.json"))


def is_study(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder of sweeps rather than a sweep or run folder."""
    path = Path(path)
    return path.is_dir() and not (path / "sweep.json").exists() \
        and not any(path.glob("seed_*.json")) and bool(find_sweeps(path))


def load_study(root: str | os.PathLike) -> list[dict[str, Any]]:
    """``{"dataset", "model", "path", "groups"}`` for each sweep below ``root``
    that holds finished cells (``groups``: :func:`summarize_groups`)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"study folder {str(root)!r} does not exist; allowed: a folder of "
                        "sweep folders")
    out = []
    for path in find_sweeps(root):
        try:
            _, records, _ = load_records(path)
        except UserError:  # a sweep that has not finished a cell yet
            continue
        c = records[0]["config"]
        out.append({"dataset": c["dataset"], "model": c["model"], "path": path,
                    "groups": summarize_groups(records)})
    if not out:
        raise UserError(f"{str(root)!r} holds no sweep with a finished cell "
                        "(<dataset>/<backbone>/cells/...)")
    return out


def _seed_scores(group: dict, split: str) -> dict[int, float]:
    """``{seed: score}`` on ``split`` of the group's finished (not diverged)
    records, non-finite scores left out."""
    return {r["seed"]: v for r in group["records"]
            if (v := score(r, split)) is not None and math.isfinite(v)}


def best_by_validation(groups: Sequence[dict], method: str, depth: int) -> dict | None:
    """The group of ``method`` at ``depth`` with the best mean validation
    accuracy (over its sparsities), or ``None``.

    The means compared are over the seeds that every candidate sparsity has
    finished (diverged runs and non-finite scores left out), so a sparsity
    with fewer seeds so far is not chosen for a luckier subset (each group's
    own mean where they share none); a tie goes to the lowest sparsity."""
    gs = [g for g in groups if g["method"] == method and g["layers"] == depth
          and g["records"]]
    per_seed = [_seed_scores(g, "val") for g in gs]
    common = set.intersection(*(set(v) for v in per_seed)) if per_seed else set()

    def key(i: int) -> tuple[float, float]:
        val = (statistics.fmean(per_seed[i][s] for s in common) if common
               else score(gs[i], "val"))
        val = -math.inf if val is None or not math.isfinite(val) else val
        return (val, -(gs[i]["sparsity"] or 0.0))

    return gs[max(range(len(gs)), key=key)] if gs else None


def last_hidden(group: dict) -> dict[str, float]:
    """The mean :data:`SMOOTHING` metrics of the group's last hidden state
    (the last ``hidden.*`` row of its records' ``layers``; else the last row)."""
    records = [r for r in group["records"] if r.get("layers")]
    if not records:
        return {}
    rows = layer_means(records, SMOOTHING)
    hidden = [row for row in rows if str(row.get("name", "")).startswith("hidden")]
    row = (hidden or rows)[-1]
    return {m: row[m] for m in SMOOTHING if isinstance(row.get(m), float)
            and math.isfinite(row[m])}


def last_hidden_per_seed(group: dict | None) -> list[dict[str, float]]:
    """:func:`last_hidden` of each of the group's records, one dict a seed."""
    return [last_hidden({"records": [r]}) for r in (group or {}).get("records", ())
            if r.get("layers")]


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test that ``a`` and ``b`` (values over
    seeds) have the same mean; ``None`` with fewer than two values on either
    side, non-finite values left out. Two constant samples give 1 when equal
    and 0 otherwise (the test's statistic is undefined there, the difference
    exact)."""
    a, b = ([v for v in side if math.isfinite(v)] for side in (a, b))
    if len(a) < 2 or len(b) < 2:
        return None
    if statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0:
        return 1.0 if statistics.fmean(a) == statistics.fmean(b) else 0.0
    from scipy.stats import ttest_ind  # only the study report needs scipy.stats

    return float(ttest_ind(a, b, equal_var=False).pvalue)


def seed_p(ticket: dict | None, trained: dict | None) -> float | None:
    """:func:`welch_p` of the two groups' per-seed test scores."""
    if ticket is None or trained is None:
        return None
    return welch_p(*(list(_seed_scores(g, "test").values()) for g in (ticket, trained)))


def verdict(diff: float | None, p: float | None = None) -> str:
    """``beats``, ``matches``, ``below`` or ``within noise`` for a
    test-accuracy difference and its seed test's p-value (``None``: one seed)."""
    if diff is None:
        return ""
    if abs(diff) <= MATCH:
        return "matches"
    if p is not None and not p < ALPHA:
        return "within noise"
    return "beats" if diff > 0 else "below"


def smoothing_verdict(ticket: dict[str, float], trained: dict[str, float],
                      seeds: tuple[Sequence[dict], Sequence[dict]] | None = None) -> str:
    """``less smoothed``, ``more smoothed`` or ``mixed`` (MAD and effective
    rank of the ticket against the trained network); ``""`` without both.
    With ``seeds`` (the two sides' :func:`last_hidden_per_seed`): ``zero
    state`` when either side's state is zero in some seed (its mean ``norm``
    is 0; records without ``norm`` are not checked), and ``no measurable
    difference`` when the two agree in direction but either fails
    :func:`welch_p` at :data:`ALPHA`."""
    if seeds and any(row.get("norm") == 0 for side in seeds for row in side):
        return "zero state"
    keys = [k for k in SMOOTHING[:2] if k in ticket and k in trained]
    if len(keys) < 2:
        return ""
    higher = [ticket[k] > trained[k] for k in keys]
    if any(higher) and not all(higher):
        return "mixed"
    if seeds:
        ps = [welch_p(*([row[k] for row in side if k in row] for side in seeds)) for k in keys]
        if any(p is not None and not p < ALPHA for p in ps):
            return "no measurable difference"
    return "less smoothed" if all(higher) else "more smoothed"


def one_class_counts(group: dict | None) -> tuple[int, int]:
    """``(k, n)``: of the ``n`` records of ``group`` that count their predicted
    classes (records from before the field have none), ``k`` predict one class
    for every test node."""
    said = [r for r in (group or {}).get("records", ())
            if isinstance(r.get("predicted_classes"), dict)]
    return sum(one_class(r) for r in said), len(said)


def compare(study: Sequence[dict]) -> list[dict[str, Any]]:
    """One row per (dataset, backbone, depth): the trained, ticket and sparse
    groups (see the module docstring), the ticket's difference and verdicts."""
    rows = []
    for sweep in study:
        groups = sweep["groups"]
        for depth in sorted({g["layers"] for g in groups}):
            trained = best_by_validation(groups, TRAINED, depth)
            ticket = best_by_validation(groups, TICKET, depth)
            sparse = best_by_validation(groups, SPARSE, depth)
            diff = None if trained is None or ticket is None else \
                score(ticket, "test") - score(trained, "test")
            p = seed_p(ticket, trained)
            t_metrics = last_hidden(ticket) if ticket else {}
            d_metrics = last_hidden(trained) if trained else {}
            per_seed = (last_hidden_per_seed(ticket), last_hidden_per_seed(trained))
            rows.append({
                "dataset": sweep["dataset"], "model": sweep["model"], "depth": depth,
                "trained": trained, "ticket": ticket, "sparse": sparse,
                "all_tickets": [g for g in groups if g["method"] == TICKET
                                and g["layers"] == depth and g["records"]],
                "diff": diff, "p": p, "verdict": verdict(diff, p),
                "ticket_metrics": t_metrics, "trained_metrics": d_metrics,
                "smoothing": smoothing_verdict(t_metrics, d_metrics, per_seed),
                "ticket_one_class": one_class_counts(ticket),
                "trained_one_class": one_class_counts(trained)})
    return rows


def _acc(g: dict | None) -> str:
    if g is None:
        return "not run"
    n = len(g["seeds"])
    return f"{score(g, 'test'):.3f}" + (f" ± {score_std(g, 'test'):.3f}" if n > 1 else "") + \
        f" (n={n})"


def _sparse_cell(g: dict | None) -> str:
    return "not run" if g is None else f"{_acc(g)} at s={g['sparsity']:g}"


def _macs(ticket: dict | None, trained: dict | None) -> str:
    """The ticket's inference MACs per pass, and their share of the trained
    network's (records from before the cost fields have none: ``-``)."""
    if ticket is None or ticket.get("inference_macs") is None:
        return "-"
    mine = ticket["inference_macs"]
    whole = (trained or {}).get("inference_macs")
    return f"{mine / 1e6:,.1f}M" + (f" ({100 * mine / whole:.0f}%)" if whole else "")


def _metric(values: dict, key: str) -> str:
    return f"{values[key]:.3g}" if key in values else "-"


def _table(rows: Sequence[dict]) -> list[str]:
    head = ["backbone", "depth", "trained (dense)", "ticket (ugt), best val", "ticket - trained",
            "verdict", "rigl, best val", "MAD ticket / trained",
            "eff. rank ticket / trained", "Dirichlet ticket / trained",
            "norm ticket / trained", "over-smoothing", "one class ticket / trained",
            "ticket's MACs (of trained)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        t, d = r["ticket_metrics"], r["trained_metrics"]
        lines.append("| " + " | ".join([
            r["model"], str(r["depth"]), _acc(r["trained"]), _sparse_cell(r["ticket"]),
            "" if r["diff"] is None else f"{100 * r['diff']:+.1f}",
            r["verdict"] + ("" if r.get("p") is None or r["verdict"] == "matches"
                            else f" (p={r['p']:.2g})"),
            _sparse_cell(r["sparse"]),
            *(f"{_metric(t, k)} / {_metric(d, k)}" for k in SMOOTHING),
            r["smoothing"],
            f"{_one_class(r['ticket_one_class'])} / {_one_class(r['trained_one_class'])}",
            _macs(r["ticket"], r["trained"])]) + " |")
    return lines


def _one_class(counts: tuple[int, int]) -> str:
    """``k/n`` seeds predicting one class (``-`` when no record counts them)."""
    k, n = counts
    return f"{k}/{n}" if n else "-"


def _depths(rows: Sequence[dict], key: str, value) -> str:
    """``"depth 8"`` or ``"depths 2, 8"`` of the rows whose ``key`` is
    ``value`` (or, for a callable, satisfies it)."""
    depths = [str(r["depth"]) for r in rows
              if (value(r[key]) if callable(value) else r[key] == value)]
    return "" if not depths else ("depths " if len(depths) > 1 else "depth ") + \
        ", ".join(depths)


#: How the statement words each over-smoothing verdict ("its last hidden state is ...").
_STATE = {"less smoothed": "less smoothed", "more smoothed": "more smoothed", "mixed": "mixed",
          "no measurable difference": "not measurably different",
          "zero state": "zero in some seed (no direction to measure)"}


def statement(rows: Sequence[dict]) -> list[str]:
    """Item 5 of the study, one bullet per backbone of one dataset's rows."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model and r["verdict"]]
        if not mine:
            out.append(f"- **{model}**: no depth has both a trained network and a ticket yet.")
            continue
        parts = [f"{word} at {d}" for word, v in
                 (("beats the trained network", "beats"), ("matches it", "matches"),
                  ("falls below it", "below"),
                  ("differs from it within the seeds' noise", "within noise"))
                 if (d := _depths(mine, "verdict", v))]
        smooth = [f"{_STATE[v]} at {d}" for v in _STATE if (d := _depths(mine, "smoothing", v))]
        seeds = sorted({len(r["ticket"]["seeds"]) for r in mine})
        flat = [f"{who} at {d}" for who, key in (("the ticket", "ticket_one_class"),
                                                 ("the trained network", "trained_one_class"))
                if (d := _depths(mine, key, lambda c: c[0] > 0))]
        out.append(f"- **{model}**: the ticket {'; '.join(parts)}"
                   + (f". Its last hidden state is {'; '.join(smooth)}" if smooth else "")
                   + (f". One class for every test node (in at least one seed): "
                      f"{'; '.join(flat)}" if flat else "")
                   + f" ({'/'.join(map(str, seeds))} seed{'s' if seeds != [1] else ''}).")
    return out


def _csv(rows: Sequence[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["dataset", "backbone", "depth", "dense_test_acc", "dense_std", "dense_seeds",
                "ugt_sparsity", "ugt_test_acc", "ugt_std", "ugt_seeds", "ugt_minus_dense",
                "verdict", "rigl_sparsity", "rigl_test_acc", "rigl_std",
                *(f"ugt_{m}" for m in SMOOTHING), *(f"dense_{m}" for m in SMOOTHING),
                "over_smoothing", "ugt_inference_macs", "dense_inference_macs",
                "ugt_one_class_seeds", "dense_one_class_seeds", "verdict_p"])

    def g3(g):
        return ["", "", ""] if g is None else [score(g, "test"), score_std(g, "test"),
                                                len(g["seeds"])]
    for r in rows:
        t, s = r["ticket"], r["sparse"]
        w.writerow([r["dataset"], r["model"], r["depth"], *g3(r["trained"]),
                    "" if t is None else t["sparsity"], *g3(t),
                    "" if r["diff"] is None else r["diff"], r["verdict"],
                    "" if s is None else s["sparsity"], *g3(s)[:2],
                    *(r["ticket_metrics"].get(m, "") for m in SMOOTHING),
                    *(r["trained_metrics"].get(m, "") for m in SMOOTHING), r["smoothing"],
                    *(_round((g or {}).get("inference_macs")) for g in (t, r["trained"])),
                    *(_one_class(r[k]) for k in ("ticket_one_class", "trained_one_class")),
                    "" if r.get("p") is None else r["p"]])
    return buf.getvalue()


def _round(v) -> int | str:
    return "" if v is None else round(v)


def plot_study(study: Sequence[dict], path: Path) -> Path:
    """Test accuracy against depth, one panel per backbone of one dataset:
    the trained network, the ticket and RigL at each weight sparsity."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(study)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    styles = {TRAINED: "-", TICKET: "--", SPARSE: ":"}
    for i, sweep in enumerate(study):
        ax = fig.add_subplot(rows, cols, i + 1)
        groups = [g for g in sweep["groups"] if g["records"]]
        depths = sorted({g["layers"] for g in groups})
        levels = sorted({g["sparsity"] for g in groups} - {None})
        colour = {sp: f"C{i}" for i, sp in enumerate(levels)}  # one per sparsity
        for method in (TRAINED, TICKET, SPARSE):
            for sp in sorted({g["sparsity"] for g in groups if g["method"] == method},
                             key=lambda x: -1 if x is None else x):
                gs = sorted((g for g in groups if g["method"] == method
                             and g["sparsity"] == sp), key=lambda g: g["layers"])
                ax.errorbar([g["layers"] for g in gs], [score(g, "test") for g in gs],
                            yerr=[score_std(g, "test") for g in gs], marker="o", capsize=2,
                            linestyle=styles[method], markersize=3,
                            color="black" if sp is None else colour[sp],
                            label=method if sp is None else f"{method} s={sp:g}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(depths, [str(d) for d in depths])
        ax.set_xticks([], minor=True)
        ax.set_title(f"{sweep['dataset']} / {sweep['model']}")
        ax.set_xlabel("depth")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=7)
    return write_atomic(path, lambda p: fig.savefig(p, format="png", dpi=100))


def study_report(root: str | os.PathLike, out: str | os.PathLike | None = None
                 ) -> dict[str, Path]:
    """Write ``study.md``, ``study.csv`` and ``study_<dataset>.png`` for the
    sweeps below ``root`` into ``out`` (default: ``root``); returns
    ``{file name: path}``."""
    study = load_study(root)
    out_dir = Path(root) if out is None else Path(out)
    check_output_dir(out_dir, what="--out" if out is not None else "report folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = compare(study)
    written: dict[str, Path] = {}
    md = ["# gnnmask study: trained networks, tickets and sparse training across depth", "",
          f"{len(study)} sweep{'s' if len(study) != 1 else ''} below "
          f"`{Path(root).as_posix()}`. At each depth the ticket "
          "(ugt) and RigL are shown at the weight sparsity with the best mean validation "
          "accuracy; the ticket *beats* the trained network (dense, same architecture) when "
          f"its mean test accuracy is more than {100 * MATCH:g} point above, *matches* it "
          f"within {100 * MATCH:g} point, and is *below* it otherwise; with two seeds or "
          "more on both sides, a larger difference must also pass Welch's t-test over the "
          f"seeds at the {100 * ALPHA:g}% level, else it is *within noise* (p in the "
          "verdict; p = 0 where neither side varies over its seeds, so the difference is "
          "exact). The sparsity is chosen by validation means over the seeds that all its "
          "candidates have finished (each one's own mean where they share none), a tie "
          "going to the lowest. Over-smoothing "
          "compares the last hidden state of that ticket with the trained network's: *less "
          "smoothed* when both its MAD and its effective rank (both scale-free) are higher, "
          "*more smoothed* when both are lower, *mixed* otherwise; with two seeds or more "
          "each difference must pass the same test, else *no measurable difference*; a "
          "last hidden state that is exactly zero in some seed on either side (a layer "
          "pruned away or dead) makes the cell a *zero state*, whose MAD and rank say "
          "nothing of smoothing. n: seeds.", ""]
    for dataset in dict.fromkeys(s["dataset"] for s in study):
        mine = [r for r in rows if r["dataset"] == dataset]
        name = f"study_{dataset}.png"
        written[name] = plot_study([s for s in study if s["dataset"] == dataset],
                                   out_dir / name)
        md += [f"## {dataset}", "", *statement(mine), "", *_table(mine), "",
               f"![{dataset}: test accuracy against depth]({name})", ""]
    written["study.csv"] = write_atomic(out_dir / "study.csv", _csv(rows).encode())
    written["study.md"] = write_atomic(out_dir / "study.md", "\n".join(md).encode())
    return written
