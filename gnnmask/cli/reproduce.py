"""``gnnmask reproduce``: published results, rerun and compared.

``list`` shows every entry with its stored measurement (``--json``: one object
per line), ``run`` trains entries resumably (ordinary run records under
``--out``) and stores each one's compact result in ``--results``, ``report``
renders the stored results as a Markdown table (with ``--out``: and one plot
per paper figure beside it; :mod:`gnnmask.reproduce.report`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from gnnmask.cli.args import show_progress
from gnnmask.errors import UserError
from gnnmask.experiments.runs import run_seeds
from gnnmask.experiments.store import config_diff, read_record
from gnnmask.reproduce import ENTRIES, entry_config, load_result, status, write_result
from gnnmask.reproduce.report import entry_row, report_markdown, write_report
from gnnmask.train import resolve_config

log = logging.getLogger("gnnmask")

#: Where the repository keeps the measured results.
RESULTS = "docs/results/reproduce"


def cmd_list(args) -> int:
    for entry in ENTRIES.values():
        row = entry_row(entry, args.results)
        if args.json:
            print(json.dumps(row))
            continue
        measured = (f"not run (stored result ran another {row['stale']})" if row.get("stale")
                    else "not run") if row["measured"] is None else \
            f"{row['measured']:.3f} +- {row['std']:.3f} ({row['seeds']} seeds), {row['status']}"
        print(f"{entry.name}: {entry.summary()} gnnmask: {measured}")
    return 0


def _selected(args) -> list:
    if args.all and args.names:
        raise UserError("give entry names or --all, not both")
    if not args.all and not args.names:
        raise UserError(f"reproduce run needs entry names or --all; allowed: "
                        f"{', '.join(ENTRIES)}")
    unknown = [n for n in args.names if n not in ENTRIES]
    if unknown:
        raise UserError(f"unknown reproduce entry {unknown[0]!r}; allowed: {', '.join(ENTRIES)}")
    entries = list(ENTRIES.values()) if args.all else [ENTRIES[n] for n in args.names]
    if args.max_cost is not None:
        entries = [e for e in entries if e.cost_min <= args.max_cost]
    return entries


def _mode(entry, config, folder: Path) -> str:
    """``overwrite`` where the entry's run folder holds records trained with
    other settings than the entry now asks (it changed since; the entry is
    what counts), else ``auto`` (finished seeds are kept and skipped)."""
    wanted = resolve_config(config).to_dict()
    for path in sorted(folder.glob("seed_*.json")):
        record = read_record(path)
        if record is not None and (diff := config_diff(record["config"], wanted)):
            log.warning("%s: the runs in %s used other settings (%s); training it again",
                        entry.name, folder, ", ".join(diff))
            return "overwrite"
    return "auto"


def cmd_run(args) -> int:
    entries = _selected(args)
    changes = {"data_root": args.data_root} if args.data_root else {}
    if args.epochs is not None:  # a smoke run: not stored as a result
        changes["epochs"] = args.epochs
    configs = [(e, entry_config(e, **changes)) for e in entries]  # all checked first
    out = Path(args.out)
    for entry, config in configs:
        summary = run_seeds(config, list(entry.seeds), out / entry.folder,
                            mode=_mode(entry, config, out / entry.folder),
                            progress=show_progress(args), log_every=None)
        records = [json.loads((out / entry.folder / f"seed_{s}.json").read_text())
                   for s in entry.seeds]
        if args.epochs is None:
            path = write_result(entry, records, args.results)
            s = status(entry, load_result(entry, args.results))
            if s.get("stale"):
                log.warning("%s: its records were run with another %s than the entry asks "
                            "(%s)", entry.name, s["stale"], path)
            elif s["measured"] is None:  # every seed diverged
                log.warning("%s: no finished seed to measure (%s)", entry.name, path)
            else:
                log.info("%s: %.4f +- %.4f against %.3f: %s (%s)", entry.name,
                         s["measured"], s["std"], entry.published, s["status"], path)
        else:
            log.info("%s: smoke run of %d epochs, %s %.4f (not stored)", entry.name,
                     args.epochs, entry.metric, summary[entry.metric])
    return 0


def cmd_report(args) -> int:
    if args.out:
        for path in write_report(args.results, args.out):
            log.info("wrote %s", path)
    else:
        print(report_markdown(args.results))
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("reproduce", help="published results: list, run, report")
    rsub = p.add_subparsers(dest="action", required=True)
    for name, func, text in (("list", cmd_list, "every entry and its stored measurement"),
                             ("run", cmd_run, "train entries resumably and store results"),
                             ("report", cmd_report, "the stored results as Markdown")):
        q = rsub.add_parser(name, help=text)
        q.add_argument("--results", default=RESULTS,
                       help=f"folder of the stored results (default: {RESULTS})")
        q.set_defaults(func=func, command="reproduce")
        if name == "list":
            q.add_argument("--json", action="store_true", help="one JSON object per line")
        if name == "run":
            q.add_argument("names", nargs="*", help="entry names (see reproduce list)")
            q.add_argument("--all", action="store_true", help="every entry")
            q.add_argument("--max-cost", type=float, default=None, metavar="MIN",
                           help="only entries estimated at most MIN CPU minutes")
            q.add_argument("--out", default="runs/reproduce",
                           help="folder of the run records (default: runs/reproduce)")
            q.add_argument("--data-root", default=None, help="data root of the real datasets")
            q.add_argument("--epochs", type=int, default=None,
                           help="a smoke run of this many epochs (its result is not stored)")
            q.add_argument("--quiet", action="store_true", help="no progress output")
        if name == "report":
            q.add_argument("--out", default=None,
                           help="write the Markdown here, and a plot per paper figure beside it")
