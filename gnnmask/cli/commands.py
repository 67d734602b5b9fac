"""Implementations of the ``gnnmask`` sub-commands."""

from __future__ import annotations

import sys
from pathlib import Path

from gnnmask.cli.main import config_from_args, parse_seeds, print_json
from gnnmask.errors import UserError


def _progress(args) -> bool:
    return not getattr(args, "quiet", False) and not getattr(args, "json", False) \
        and sys.stdout.isatty()


def _fmt(x, digits=4):
    return "-" if x is None else f"{x:.{digits}f}"


def cmd_train(args) -> int:
    from gnnmask.experiments import default_run_name, run_seeds
    from gnnmask.train import resolve_config

    seeds = parse_seeds(args.seeds)
    config = resolve_config(config_from_args(args))
    if args.data_root is not None:
        from gnnmask.data import resolve_root

        resolve_root(args.data_root)
    out = Path(args.out) if args.out else Path("runs") / default_run_name(config)
    on_record = None
    if args.save_ticket:
        from gnnmask.masks import is_masked, save_ticket

        def on_record(record, model):
            if not is_masked(model):
                raise UserError(f"--save-ticket needs a mask-only method, not {config.method!r}")
            path = Path(args.save_ticket)
            if len(seeds) > 1:
                path = path.with_name(f"{path.stem}.seed{record['seed']}{path.suffix}")
            save_ticket(path, model)
            record.setdefault("tickets", []).append(str(path))

    summary = run_seeds(config, seeds, out, progress=_progress(args), on_record=on_record)
    if args.json:
        print_json(summary)
        return 0
    rows = [("seed", "best ep", "train", "val", "test", "s/step")]
    for seed in seeds:
        from gnnmask.train import read_json

        r = read_json(out / f"seed_{seed}.json")
        rows.append((str(seed), str(r["best_epoch"]), _fmt(r["train_acc"]), _fmt(r["val_acc"]),
                     _fmt(r["test_acc"]), _fmt(r["epoch_time_s"], 3)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"{config.dataset} / {config.model} x{config.layers} (hidden {config.hidden}) / "
          f"{config.method}" + (f" sparsity {config.sparsity}" if config.sparsity else ""))
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    print(f"test acc {summary['test_acc']:.4f} ± {summary['test_acc_std']:.4f}  "
          f"val acc {summary['val_acc']:.4f}  params {summary['params']:,} "
          f"(non-zero {summary['nonzero_params']:,})")
    print(f"records: {out}/")
    return 0


def cmd_datasets(args) -> int:
    from gnnmask.data import list_datasets, resolve_root

    root = resolve_root(args.data_root)
    rows = list_datasets(root)
    if args.json:
        print_json(rows)
        return 0
    print(f"data root: {root}")
    header = ("name", "nodes", "edges", "features", "classes", "split", "available")
    table = [header] + [
        (r["name"], f"{r['nodes']:,}", f"{r['edges']:,}", f"{r['features']:,}",
         str(r["classes"]), str(r["split"]), "yes" if r["available"] else "no")
        for r in rows
    ]
    widths = [max(len(t[i]) for t in table) for i in range(len(header))]
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths)))
    return 0


def add_experiment_parsers(sub) -> None:
    """Sub-commands of the experiments layer (sweep, report, metrics, demo)."""
    try:
        from gnnmask.cli import experiments
    except ImportError:  # pragma: no cover - before the experiments CLI exists
        return
    experiments.add_parsers(sub)


COMMANDS = {"train": cmd_train, "datasets": cmd_datasets}


def run(args) -> int:
    from gnnmask.train.runtime import flush_denormals, tune_cpu_allocator

    # before the first parallel tensor operation: see gnnmask.train.runtime
    flush_denormals()
    tune_cpu_allocator()
    if args.command in COMMANDS:
        return COMMANDS[args.command](args)
    return args.func(args)
