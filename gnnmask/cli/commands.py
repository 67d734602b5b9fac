"""The ``train``, ``datasets``, ``methods``, ``list`` and ``evaluate`` sub-commands."""

from __future__ import annotations

from pathlib import Path

from gnnmask.cli.args import (
    config_from_args,
    log_every,
    output_mode,
    parse_seeds,
    print_json,
    show_progress,
)
from gnnmask.data import (
    DATASETS,
    evaluate_accuracy,
    get_info,
    list_datasets,
    load_dataset,
    resolve_root,
)
from gnnmask.errors import EXIT_DIVERGED, UserError
from gnnmask.experiments import default_run_name, run_seeds
from gnnmask.experiments.aggregate import load_records
from gnnmask.experiments.executors import EXECUTORS
from gnnmask.experiments.runs import diverged, score, score_std
from gnnmask.experiments.store import check_output_file, metric_of
from gnnmask.export import export_model, exportable_models, save_export, stored_bytes
from gnnmask.export.runtime import ExportedGNN
from gnnmask.masks import (
    DISTRIBUTIONS,
    RULES,
    SCHEDULES,
    SCORE_INITS,
    WEIGHT_INITS,
    load_ticket,
    read_ticket,
    save_ticket,
    ticket_graph,
)
from gnnmask.masks.init import SPARSE_INITS
from gnnmask.methods import METHODS, get_method_class
from gnnmask.metrics import METRICS, evaluate_model, holdout_classes
from gnnmask.metrics.evaluation import EVALUATIONS
from gnnmask.models import ACTIVATIONS, MODELS, NORMS, RESIDUALS
from gnnmask.presets import PRESETS
from gnnmask.tasks import DECODERS, READOUTS, TASKS
from gnnmask.train import read_json, resolve_config
from gnnmask.train.config import evaluation_names, flag
from gnnmask.train.distributed import is_main_process
from gnnmask.train.optim import LR_SCHEDULES, OPTIMIZERS


def _fmt(x, digits=4):
    return "-" if x is None or x != x else f"{x:.{digits}f}"


def _table(rows: list[tuple], align_right: bool = False) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    pad = str.rjust if align_right else str.ljust
    return "\n".join("  ".join(pad(str(c), w) for c, w in zip(r, widths)).rstrip() for r in rows)


def settings_text(values: dict) -> str:
    """``key = value`` lines (JSON values), as a config file would spell them."""
    import json

    width = max(map(len, values), default=0)
    return "\n".join(f"  {k:<{width}} = {json.dumps(v)}" for k, v in values.items())


def ticket_paths(path: str, seeds: list[int]) -> dict[int, Path]:
    """Where ``--save-ticket PATH`` puts each seed's ticket."""
    path = Path(path)
    if len(seeds) == 1:
        return {seeds[0]: path}
    return {s: path.with_name(f"{path.stem}.seed{s}{path.suffix}") for s in seeds}


def cmd_train(args) -> int:
    seeds = parse_seeds(args.seeds)
    config = resolve_config(config_from_args(args))
    out = Path(args.out) if args.out else Path("runs") / default_run_name(config)
    tickets, exports, exported, graphs = {}, {}, {}, {}
    if args.save_ticket:
        if not get_method_class(config.method).masks:
            raise UserError(f"--save-ticket needs a masked method; {config.method!r} attaches "
                            "no masks")
        if config.decoder == "mlp":  # the ticket rebuilds the backbone only
            raise UserError("--save-ticket stores the backbone's masks; the mlp decoder is not "
                            "part of it; allowed with --task link: --decoder dot, cosine")
        tickets = ticket_paths(args.save_ticket, seeds)
        for path in tickets.values():
            check_output_file(path, "--save-ticket")
    if args.export:
        if config.task != "node":  # the export runs class logits of nodes
            raise UserError(f"--export is not read by --task {config.task}; allowed with: "
                            "--task node")
        if config.model not in exportable_models():
            raise UserError(f"--export: model {config.model!r} cannot be exported; allowed: "
                            f"{', '.join(exportable_models())}")
        exports = ticket_paths(args.export, seeds)
        for path in exports.values():
            check_output_file(path, "--export")

    def on_model(seed, model, inputs):
        """Export the final model with the graph its method gives it; keep a
        graph ticket's edges for its ticket."""
        if tickets and config.edge_sparsity:
            graphs[seed] = (inputs[1], inputs[2] if len(inputs) > 2 else None)
        if exports:
            exports[seed].parent.mkdir(parents=True, exist_ok=True)
            exported[seed] = str(save_export(export_model(model, *inputs), exports[seed]))

    def on_record(record, model):
        finite = not (diverged(record) and not record["diverged"]["restored"])
        if tickets:
            path = tickets[record["seed"]]
            path.parent.mkdir(parents=True, exist_ok=True)
            record["ticket"] = str(save_ticket(path, model, dataset=config.dataset,
                                               graph=graphs.get(record["seed"]),
                                               task=config.task)) \
                if finite else None  # no finite state to save
        if exports:
            record["export"] = exported.get(record["seed"])

    if args.dry_run:
        shown = {k: v for k, v in config.to_dict().items() if k != "seed"}
        if args.json:
            print_json({"config": shown, "seeds": seeds, "out": str(out)})
        else:
            print(f"out: {out}\nseeds: {', '.join(map(str, seeds))}\nresolved config:")
            print(settings_text(shown))
        return 0
    summary = run_seeds(config, seeds, out, mode=output_mode(args),
                        progress=show_progress(args), log_every=log_every(args, config.epochs),
                        on_record=on_record,
                        on_model=on_model if exports or tickets else None,
                        require=(("ticket",) if tickets else ()) + (("export",) if exports
                                                                    else ()))

    if not is_main_process():
        return 0
    if args.json:
        print_json(summary)
        return EXIT_DIVERGED if summary["diverged_seeds"] else 0

    rows = [("seed", "best ep", "train", "val", "test", "s/step", "status")]
    for seed in seeds:
        r = read_json(out / f"seed_{seed}.json")
        status = (f"diverged at epoch {r['diverged']['epoch']}" if diverged(r) else
                  r.get("status", "finished"))
        rows.append((str(seed), str(r["best_epoch"]), _fmt(score(r, "train")),
                     _fmt(score(r, "val")), _fmt(score(r, "test")), _fmt(r["epoch_time_s"], 3),
                     status))
    print(f"{config.dataset} / {config.model} x{config.layers} (hidden {config.hidden}) / "
          f"{config.method}" + (f" sparsity {config.sparsity}" if config.sparsity else ""))
    print(_table(rows, align_right=True))
    lost = summary["diverged_seeds"]
    over = f" over {len(summary['seeds'])} finished seed(s)" if lost else ""
    name = metric_of(summary)
    print(f"test {name} {_fmt(score(summary, 'test'))} ± {_fmt(score_std(summary, 'test'))}  "
          f"val {name} {_fmt(score(summary, 'val'))}{over}  params {summary['params']:,} "
          f"(non-zero {summary['nonzero_params']:,})")
    if lost:
        print(f"diverged: seed(s) {', '.join(map(str, lost))} (non-finite loss or outputs; "
              f"their records say where; exit status {EXIT_DIVERGED})")
    print(f"records: {out}/")
    return EXIT_DIVERGED if lost else 0


def cmd_datasets(args) -> int:
    root = resolve_root(args.data_root)
    rows = list_datasets(root, check=args.check)
    if args.json:
        print_json(rows)
        return 0
    print(f"data root: {root}")
    header = ("name", "tasks", "graphs", "nodes", "edges", "features", "classes", "split",
              "verified" if args.check else "available")
    table = [header] + [
        (r["name"], r["tasks"], f"{r['graphs']:,}", f"{r['nodes']:,}", f"{r['edges']:,}",
         f"{r['features']:,}", str(r["classes"]), str(r["split"]),
         "yes" if r["available"] else "no")
        for r in rows
    ]
    print(_table(table))
    problems = [p for r in rows for p in r.get("problems", [])]
    for p in problems:
        print(f"  problem: {p}")
    return 2 if problems else 0


def cmd_methods(args) -> int:
    for name, cls in METHODS.items():
        print(f"{name}: {cls.summary()}")
        reads = ", ".join(flag(f) for f in cls.reads) or "none"
        print(f"    method flags: {reads}")
        defaults = ", ".join(f"{k}={v}" for k, v in cls.defaults.items())
        if defaults:
            print(f"    defaults: {defaults}")
        for key, text in cls.options.items():
            print(f"    --extra {key}=...: {text}")
        for preset in PRESETS.values():
            if preset.settings.get("method") == name:
                print(f"    --preset {preset.name}: {preset.paper or preset.text}")
                if preset.differs:
                    print(f"        differs: {preset.differs}")
    return 0


def _read(model, key: str) -> str:
    """An option a model reads, with the model's own default if it has one."""
    return f"{key} (default {model.defaults[key]})" if key in model.defaults else key


def _registries() -> dict[str, dict[str, str]]:
    """``{kind: {name: one-line description}}`` for ``gnnmask list``."""
    return {
        "methods": METHODS.describe(),
        "rules": RULES.describe(),
        "models": {n: f"{text} Reads {', '.join(_read(MODELS[n], k) for k in MODELS[n].reads)}."
                   for n, text in MODELS.describe().items()},
        "activations": ACTIVATIONS.describe(),
        "norms": NORMS.describe(),
        "residuals": RESIDUALS.describe(),
        "weight-inits": WEIGHT_INITS.describe(),
        "sparse-inits": SPARSE_INITS.describe(),
        "score-inits": SCORE_INITS.describe(),
        "schedules": SCHEDULES.describe(),
        "distributions": DISTRIBUTIONS.describe(),
        "optimizers": OPTIMIZERS.describe(),
        "lr-schedules": LR_SCHEDULES.describe(),
        "datasets": {n: (f"{d.graphs:,} graphs, " if d.graphs > 1 else "") +
                     f"{d.nodes:,} nodes, {d.classes} classes, {d.split} split; tasks: "
                     f"{', '.join(d.tasks)}." for n, d in DATASETS.items()},
        "tasks": TASKS.describe(),
        "decoders": DECODERS.describe(),
        "readouts": READOUTS.describe(),
        "metrics": METRICS.describe(),
        "evaluations": EVALUATIONS.describe(),
        "executors": EXECUTORS.describe(),
        "presets": PRESETS.describe(),
    }


def cmd_list(args) -> int:
    registries = _registries()
    kinds = [args.kind] if args.kind else list(registries)
    for kind in kinds:
        print(f"{kind}:")
        for name, text in registries[kind].items():
            print(f"  {name}" + (f"  {text}" if text else ""))
    return 0


def _evaluation_row(record: dict) -> dict:
    """The headline numbers of a record's ``evaluation``."""
    ev = record.get("evaluation") or {}
    row = {"seed": record.get("seed"), "test_acc": record.get("test_acc")}
    if "calibration" in ev:
        row["ece"] = ev["calibration"]["ece"]
        if "ece_scaled" in ev["calibration"]:
            row["ece_scaled"] = ev["calibration"]["ece_scaled"]
            row["temperature"] = ev["calibration"]["temperature"]
    if "ood" in ev:
        row["ood_auroc"] = ev["ood"]["auroc"]
    if "robustness" in ev:
        r = ev["robustness"]
        for kind in ("features", "edges"):
            for b, acc in zip(r["budgets"], r[kind]):
                row[f"{kind}@{b:g}"] = acc
    return row


def ticket_and_data(args):
    """``(header, model, data)`` of ``--ticket`` and ``--dataset`` (with
    ``--data-root``, ``--split``, ``--seed``): a dataset other than the
    ticket's own (its header's name, or its input and output widths) is a
    :class:`UserError` naming the ticket's, before any forward pass."""
    if not args.dataset:
        raise UserError("--ticket needs --dataset NAME (the dataset the ticket was trained on)")
    header, _ = read_ticket(args.ticket)
    if header.get("task", "node") != "node":
        raise UserError(f"ticket {args.ticket!r} was trained for --task {header['task']}; "
                        "allowed here: node-classification tickets (load it in Python with "
                        "gnnmask.masks.load_ticket)")
    own = header.get("dataset")
    if own is not None and get_info(args.dataset).name != own:
        raise UserError(f"ticket {args.ticket!r} was trained on dataset {own!r}, not "
                        f"{args.dataset!r}; allowed: --dataset {own}")
    seed = args.seed if args.seed is not None else int(header["build_seed"])
    data = load_dataset(args.dataset, root=args.data_root, split=args.split, seed=seed)
    kwargs = header.get("kwargs") or {}
    want = (kwargs.get("in_dim"), kwargs.get("out_dim"))
    have = (int(data.num_features), int(data.num_classes))
    if None not in want and tuple(want) != have:
        raise UserError(f"ticket {args.ticket!r} takes {want[0]} features and {want[1]} "
                        f"classes; dataset {args.dataset!r} has {have[0]} and {have[1]}; "
                        "allowed: the dataset the ticket was trained on")
    graph = ticket_graph(args.ticket)
    if graph is not None:  # a graph ticket runs on its kept edges
        data.edge_index, data.ticket_edge_weight = graph
    return header, load_ticket(args.ticket), data


def _ticket_forward(model, data):
    """``model`` on ``data``'s graph, with a graph ticket's edge weights where
    the graph is the ticket's own (perturbed copies run unweighted)."""
    weight = getattr(data, "ticket_edge_weight", None)
    return model(data.x, data.edge_index) if weight is None or \
        data.edge_index.size(1) != weight.numel() else model(data.x, data.edge_index, weight)


def cmd_evaluate(args) -> int:
    if args.run:
        return _evaluate_run(args)
    if not args.ticket or not args.dataset:
        raise UserError("evaluate needs --run RUN_DIR, or --ticket PATH with --dataset NAME")
    import torch

    names = evaluation_names(args.evaluations)
    if "ood" in names and not args.holdout_classes:
        raise UserError("--evaluations ood needs --holdout-classes F: the fraction of classes "
                        "the ticket was trained without (drawn from --seed)")
    header, model, data = ticket_and_data(args)
    seed = args.seed if args.seed is not None else int(header["build_seed"])
    if args.holdout_classes:
        held = torch.tensor(holdout_classes(int(data.num_classes), args.holdout_classes, seed))
        out = torch.isin(data.y, held)
        data.ood_mask, data.test_mask = data.test_mask & out, data.test_mask & ~out
    try:
        with torch.no_grad():
            pred = _ticket_forward(model, data).argmax(-1)
        row = {f"{s}_acc": evaluate_accuracy(data, pred, getattr(data, f"{s}_mask"))
               for s in ("train", "val", "test")}
        result = evaluate_model(lambda d: _ticket_forward(model, d), data, names, seed=seed)
    except RuntimeError as e:
        raise UserError(f"ticket {args.ticket!r} does not fit dataset {args.dataset!r}: "
                        f"{' '.join(str(e).split())[:200]}") from None
    row["sparsity"] = header["sparsity"]
    if args.json:
        print_json({**row, "evaluation": result})
        return 0
    print(f"{args.ticket}: {data.name}, sparsity {row['sparsity']:g}")
    shown = _evaluation_row({"test_acc": score(row, "test"), "evaluation": result})
    shown.pop("seed")
    shown = {"train_acc": score(row, "train"), "val_acc": score(row, "val"), **shown}
    print(_table([tuple(shown), tuple(_fmt(v) for v in shown.values())], align_right=True))
    return 0


def _export_source(args):
    """``(ticket path, dataset args)`` of ``gnnmask export SOURCE``: a ticket
    file (with ``--dataset``), or a run folder whose record saved one."""
    source = Path(args.source)
    if not source.is_dir():
        return args
    _, records, _ = load_records(source)
    chosen = [r for r in records if args.seed is None or r["seed"] == args.seed]
    if not chosen:
        raise UserError(f"run {str(source)!r} has no seed {args.seed}; allowed: "
                        f"{', '.join(str(r['seed']) for r in records)}")
    record = chosen[0]
    if not record.get("ticket"):
        raise UserError(f"run {str(source)!r} saved no ticket for seed {record['seed']}; "
                        "allowed: a run trained with --save-ticket PATH, or a ticket file")
    c = record["config"]
    args.source, args.seed = record["ticket"], None
    args.dataset = args.dataset or c["dataset"]
    args.data_root = args.data_root or c.get("data_root")
    args.split = c.get("split", 0) if args.split is None else args.split
    return args


def cmd_export(args) -> int:
    import torch

    args = _export_source(args)
    args.ticket, args.split = args.source, args.split or 0
    name = (read_ticket(args.ticket)[0].get("kwargs") or {}).get("name")
    if name is not None and name not in exportable_models():
        raise UserError(f"model {name!r} cannot be exported; allowed: "
                        f"{', '.join(exportable_models())}")
    check_output_file(Path(args.out), "--out")
    header, model, data = ticket_and_data(args)
    spec = export_model(model, data.x, data.edge_index, getattr(data, "ticket_edge_weight", None))
    exported = ExportedGNN(spec)
    with torch.no_grad():
        diff = float((exported(data.x) - _ticket_forward(model, data)).abs().max())
    path = save_export(spec, args.out)
    dense = sum(p.numel() for n, p in model.named_parameters() if not n.endswith(".scores")) * 4
    row = {"path": str(path), "model": spec["model"], "nodes": spec["num_nodes"],
           "edges": int(spec["adjacency"]["col"].numel()), "stored_bytes": stored_bytes(spec),
           "file_bytes": path.stat().st_size, "dense_weight_bytes": dense,
           "max_abs_diff": diff}
    if args.json:
        print_json(row)
    else:
        print(f"{path}: {row['model']} on {data.name} ({row['nodes']:,} nodes, "
              f"{row['edges']:,} stored edges), {row['file_bytes']:,} bytes (dense float32 "
              f"weights alone: {dense:,}); outputs within {diff:.2g} of the masked model's; "
              "run it with gnnmask/export/runtime.py (PyTorch only): load(PATH)(x)")
    return 0


def _evaluate_run(args) -> int:
    _, records, unreadable = load_records(args.run)
    rows = [_evaluation_row(r) | {"cell": f"{r['config']['method']}/L{r['config']['layers']}"}
            for r in records]
    if not any(len(r) > 3 for r in rows):
        raise UserError(f"the records in {args.run!r} hold no evaluations; train with "
                        "--evaluations calibration,robustness[,ood --holdout-classes F]")
    if args.json:
        print_json(rows)
        return 0
    cols = list(dict.fromkeys(k for r in rows for k in r))
    cols.remove("cell")
    table = [("cell", *cols)] + [(r["cell"], *(_fmt(r.get(c)) if c != "seed" else
                                              str(r.get(c)) for c in cols)) for r in rows]
    print(_table(table, align_right=True))
    for path in unreadable:
        print(f"note: {path} is not a readable record; left out")
    return 0


def add_parsers(sub) -> None:
    """``datasets``, ``methods``, ``list``, ``evaluate`` and ``export``."""
    p = sub.add_parser("datasets", help="list datasets and whether they are available")
    p.add_argument("--data-root", default=None, help="data root (default: $GNNMASK_DATA, "
                   "else ./datasets)")
    p.add_argument("--check", action="store_true",
                   help="verify every file (sizes and SHA-256 against the root's MANIFEST.tsv "
                        "where it lists them, and a parse); exit 2 if any fails")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("methods", help="the training methods, their flags and options")
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser("list", help="every registered choice: methods, rules, models, ...")
    p.add_argument("kind", nargs="?", default=None,
                   choices=list(_registries()))
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("evaluate", help="accuracy, calibration, robustness and OOD detection "
                                        "of a ticket, or the stored evaluations of a run")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", metavar="RUN_DIR", help="a train or sweep folder (prints the "
                     "evaluations its records hold)")
    src.add_argument("--ticket", metavar="PATH", help="a saved ticket (needs --dataset)")
    p.add_argument("--dataset", default=None, help="dataset to evaluate the ticket on")
    p.add_argument("--evaluations", default="calibration,robustness",
                   help="none, all or a comma-separated list of calibration, robustness, ood "
                        "(default: calibration,robustness)")
    p.add_argument("--holdout-classes", type=float, default=0.0, metavar="F",
                   help="the fraction of classes the ticket was trained without (for ood)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--split", type=int, default=0, help="split number (default: 0)")
    p.add_argument("--seed", type=int, default=None,
                   help="data seed (csbm graph, random splits; default: the ticket's seed)")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export", help="a ticket (or a run's saved ticket) as a compact "
                                      "inference file that runs with PyTorch alone")
    p.add_argument("source", metavar="TICKET_OR_RUN", help="a saved ticket, or a run folder "
                   "trained with --save-ticket")
    p.add_argument("--out", required=True, metavar="FILE", help="the exported file "
                   "(gnnmask/export/runtime.py loads it)")
    p.add_argument("--dataset", default=None, help="the ticket's dataset (a run folder names "
                   "its own)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--split", type=int, default=None, help="split number (default: the run's, "
                   "else 0)")
    p.add_argument("--seed", type=int, default=None, help="a run folder's seed (default: its "
                   "first); for a ticket file: the data seed (default: the ticket's)")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.set_defaults(func=cmd_export)

