"""The ``train`` and ``datasets`` sub-commands."""

from __future__ import annotations

from pathlib import Path

from gnnmask.cli.args import config_from_args, parse_seeds, print_json, show_progress
from gnnmask.errors import UserError


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
        from gnnmask.masks import save_ticket
        from gnnmask.methods import get_method_class

        if not get_method_class(config.method).masks:
            raise UserError(f"--save-ticket needs a masked method; {config.method!r} attaches "
                            "no masks")

        def on_record(record, model):
            path = Path(args.save_ticket)
            if len(seeds) > 1:
                path = path.with_name(f"{path.stem}.seed{record['seed']}{path.suffix}")
            record["ticket"] = str(save_ticket(path, model))

    summary = run_seeds(config, seeds, out, progress=show_progress(args), on_record=on_record)
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
