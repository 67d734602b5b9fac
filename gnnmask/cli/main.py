"""The ``gnnmask`` command line: a thin layer over the Python API.

Every sub-command parses and validates its arguments, then calls the same
functions users call from Python. User errors print one line on stderr and
exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gnnmask.cli.args import Parser, add_run_arguments
from gnnmask.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    from gnnmask import __version__
    from gnnmask.cli import commands, experiments

    parser = Parser(prog="gnnmask", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"gnnmask {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("train", help="train one configuration over one or more seeds")
    add_run_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON line on stdout")
    p.add_argument("--save-ticket", default=None, metavar="PATH",
                   help="save the trained ticket (masked methods)")
    p.set_defaults(func=commands.cmd_train)

    p = sub.add_parser("datasets", help="list datasets and whether they are available")
    p.add_argument("--data-root", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=commands.cmd_datasets)

    experiments.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from gnnmask.train.runtime import configure_process

    try:
        args = build_parser().parse_args(argv)
        configure_process()  # before the first parallel tensor operation
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"gnnmask: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gnnmask: interrupted; finished records are kept", file=sys.stderr)
        return 130
