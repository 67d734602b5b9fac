"""The ``gnnmask`` command line: a thin layer over the Python API.

Every sub-command parses and validates its arguments, then calls the same
functions users call from Python. User errors print one line on stderr and
exit with status 2; nothing is written before the input has been checked.
Progress and notes go through :mod:`logging` (logger ``gnnmask``): to stdout
(stderr with ``--json``), and to ``--log-file`` when given.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import gnnmask.cli.commands as commands
import gnnmask.cli.experiments as experiments
import gnnmask.cli.reproduce as reproduce
from gnnmask import __version__
from gnnmask.cli.args import Parser, add_run_arguments, preset_defaults, read_config_file
from gnnmask.errors import UserError
from gnnmask.train.runtime import configure_process


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``gnnmask`` parser and its sub-command parsers by name."""
    parser = Parser(prog="gnnmask", description=__doc__.splitlines()[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"gnnmask {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("train", help="train one configuration over one or more seeds")
    add_run_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON line on stdout")
    p.add_argument("--export", default=None, metavar="PATH",
                   help="export each seed's final model (any method; a graph ticket with "
                        "its kept edges) as a compact inference file, like `gnnmask "
                        "export` (several seeds: PATH.seedN.SUFFIX)")
    p.add_argument("--save-ticket", default=None, metavar="PATH",
                   help="save each seed's trained ticket (masked methods; several seeds "
                        "add .seedN before the suffix)")
    p.set_defaults(func=commands.cmd_train)

    commands.add_parsers(sub)
    experiments.add_parsers(sub)
    reproduce.add_parsers(sub)
    return parser, dict(sub.choices)


def _setup_logging(args) -> None:
    """Log records of ``gnnmask.*`` to stdout (stderr with ``--json``) and
    ``--log-file``; ``--quiet`` keeps warnings only on the console."""
    logger = logging.getLogger("gnnmask")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
    quiet = getattr(args, "quiet", False) or (  # torchrun's other ranks keep quiet
        getattr(args, "distributed", False) and os.environ.get("RANK", "0") != "0")
    if not quiet:  # progress and notes: stdout (stderr with --json, whose stdout is data)
        info = logging.StreamHandler(sys.stderr if getattr(args, "json", False) else sys.stdout)
        info.setLevel(logging.INFO)
        info.addFilter(lambda record: record.levelno < logging.WARNING)
        info.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(info)
    warnings = logging.StreamHandler(sys.stderr)  # warnings: always stderr
    warnings.setLevel(logging.WARNING)
    warnings.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(warnings)
    path = getattr(args, "log_file", None)
    if path:
        try:
            handler = logging.FileHandler(path)
        except OSError as e:
            raise UserError(f"cannot write --log-file {path!r}: {e.strerror}") from None
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv``; with ``--preset NAME`` and/or ``--config FILE``, their
    values become the defaults of the sub-command (the file's over the
    preset's) and the command line overrides them."""
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    file = read_config_file(args.config, args.command) if getattr(args, "config", None) else {}
    name = getattr(args, "preset", None) or file.get("preset")
    if file or name:
        preset = preset_defaults(name, args.command) if name else {}
        extra = {**preset.get("config_extra", {}), **file.get("config_extra", {})}
        commands[args.command].set_defaults(**{**preset, **file, "config_extra": extra})
        args = parser.parse_args(argv)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse(argv)
        if getattr(args, "deterministic", False):  # before CUDA starts (cuBLAS reads it then)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        _setup_logging(args)
        configure_process()  # before the first parallel tensor operation
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"gnnmask: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gnnmask: interrupted; finished records are kept", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `gnnmask ... | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    finally:  # main() may be called again in this process (tests, notebooks)
        logger = logging.getLogger("gnnmask")
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
