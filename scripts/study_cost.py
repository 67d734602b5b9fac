"""What is left of the depth x sparsity study, and its cost, from its own records.

    python scripts/study_cost.py [STUDY_DIR] [--seeds 0,1,2] [--datasets cora,...]

Every cell of the design (scripts/depth_sparsity.sh: 7 backbones x depths
2/8/16/32/64 x dense, and ugt and rigl at sparsities 0.5/0.9/0.99) that has no
record yet is priced at the median ``total_time_s`` of its group (dataset,
backbone, method, depth: the masks are dense tensors, so a step costs the same
at every sparsity) over the sparsities and seeds that finished it; a group no
cell has finished, at the same group on Cora times the dataset's cost ratio to
Cora (the median over the groups both have finished). The median, not the
mean: a cell timed while other work shared the two cores took up to 58x its
group's median (CiteSeer, GCN, RigL, 32 layers, sparsity 0.99: 5935 s
against 102 s), and such records must not price a whole graph's cells. The
records' times are wall-clock seconds of one process at one thread while a
second one ran beside it, so they read as CPU-seconds of this two-core
machine. Prints the finished and missing cells and the estimated CPU-hours
per dataset and seed.
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict
from pathlib import Path

from gnnmask.cli.args import Parser, parse_seeds
from gnnmask.errors import UserError
from gnnmask.experiments.sweep import load_cells

BACKBONES = ("gcnii", "gcn", "appnp", "resgcn", "jknet", "dagnn", "gprgnn")
DEPTHS = (2, 8, 16, 32, 64)
SPARSITIES = (0.5, 0.9, 0.99)


def design(dataset: str, seed: int):
    """Every cell of the design for one dataset and seed."""
    for backbone in BACKBONES:
        for depth in DEPTHS:
            yield (dataset, backbone, "dense", depth, None, seed)
            for method in ("ugt", "rigl"):
                for s in SPARSITIES:
                    yield (dataset, backbone, method, depth, s, seed)


def load(root: Path) -> dict[tuple, float | None]:
    """``{cell: total_time_s}`` of every readable record below ``root`` (its
    sweeps ``<dataset>/<backbone>``, read by the sweeps' own reader; ``None``
    where a record has no time: finished, but not a price)."""
    out = {}
    for sweep in sorted(root.glob("*/*/")):
        cells, unreadable = load_cells(sweep)
        for path in unreadable:
            print(f"skipped (unreadable): {path}")
        dataset, backbone = sweep.relative_to(root).parts
        for cell, record in cells:
            out[(dataset, backbone, cell.method, cell.depth, cell.sparsity, cell.seed)] = \
                record.get("total_time_s")
    return out


def estimate(done: dict[tuple, float], datasets: list[str], seeds: list[int]):
    """``({(dataset, seed): (finished, cells, hours, unpriced)}, {dataset: ratio})``."""
    by_group = defaultdict(list)  # (dataset, backbone, method, depth) -> times
    for cell, t in done.items():
        if t is not None:
            by_group[cell[:4]].append(t)
    price = {k: statistics.median(v) for k, v in by_group.items()}
    ratio = {}
    for d in datasets:
        pairs = [price[k] / price[("cora", *k[1:])] for k in price
                 if k[0] == d and ("cora", *k[1:]) in price]
        ratio[d] = statistics.median(pairs) if pairs else None
    out = {}
    for d in datasets:
        for seed in seeds:
            cells = list(design(d, seed))
            missing = [c for c in cells if c not in done]
            hours, unpriced = 0.0, 0
            for c in missing:
                if c[:4] in price:
                    hours += price[c[:4]] / 3600
                elif ratio[d] is not None and ("cora", *c[1:4]) in price:
                    hours += ratio[d] * price[("cora", *c[1:4])] / 3600
                else:
                    unpriced += 1
            out[(d, seed)] = (len(cells) - len(missing), len(cells), hours, unpriced)
    return out, ratio


def parse(argv=None) -> tuple[Path, list[str], list[int]]:
    """The study folder, datasets and seeds; a :class:`UserError` for bad input."""
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", nargs="?", default="docs/results/study")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--datasets", default="cora,citeseer,pubmed,texas")
    args = ap.parse_args(argv)
    seeds = parse_seeds(args.seeds)  # the CLI's own parser and message
    root = Path(args.root)
    if not root.is_dir():
        raise UserError(f"study folder {args.root!r} does not exist; allowed: a folder of "
                        "<dataset>/<backbone> sweeps")
    datasets = args.datasets.split(",")
    if unknown := [d for d in datasets if not (root / d).is_dir()]:
        have = sorted(d.name for d in root.iterdir() if d.is_dir())
        raise UserError(f"--datasets {','.join(unknown)!r} has no sweeps in {args.root!r}; "
                        f"allowed: {', '.join(have)}")
    return root, datasets, seeds


def main(argv=None) -> None:
    try:
        root, datasets, seeds = parse(argv)
    except UserError as err:  # one line on stderr, exit status 2 (bad input)
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    rows, ratio = estimate(load(root), datasets, seeds)
    for (d, seed), (finished, cells, hours, unpriced) in rows.items():
        note = f", {unpriced} cells unpriced" if unpriced else ""
        print(f"{d:9s} seed {seed}: {finished:3d} of {cells} cells finished, "
              f"{hours:5.1f} CPU-hours left{note}")
    ratios = [f"{d} {r:.2f}" for d, r in ratio.items() if r is not None and d != "cora"]
    if ratios:
        print("cost ratio to cora: " + ", ".join(ratios))
    print(f"in all: {sum(r[2] for r in rows.values()):.1f} CPU-hours left")


if __name__ == "__main__":
    main()
