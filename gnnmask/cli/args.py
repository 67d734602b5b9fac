"""Argument helpers shared by every ``gnnmask`` sub-command.

The run flags of ``train`` and ``sweep`` are derived from the fields of
:class:`~gnnmask.train.RunConfig` (their help, type and registry of choices),
so a new config field is a new flag without touching the CLI.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from gnnmask.errors import UserError


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line, as gnnmask's other errors."""

    def error(self, message: str):  # noqa: D401
        raise UserError(f"{self.prog}: {message}")


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"``, ``"0-4"`` or a mix (``"0-2,7"``) to a list of seeds."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (None, None)
                lo, hi = int(lo), int(hi)
                if hi < lo:
                    raise ValueError
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(part))
    except (TypeError, ValueError):
        raise UserError(
            f"--seeds {text!r} is malformed; allowed: comma-separated non-negative integers "
            "or ranges, e.g. 0,1,2 or 0-4"
        ) from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise UserError(
            f"--seeds {text!r} is malformed; allowed: distinct non-negative integers, e.g. 0,1,2"
        )
    return seeds


def parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean; allowed: true, false")


def _arg_type(annotation: str):
    if "bool" in annotation:
        return parse_bool
    if "int" in annotation:
        return int
    if "float" in annotation:
        return float
    return str


#: Fields that ``train``/``sweep`` set through other flags (``--seeds``,
#: ``--extra``) or, in a sweep, through its axes.
_NOT_FLAGS = ("seed", "extra")
_SWEEP_AXES = ("layers", "method")


def add_run_arguments(p: argparse.ArgumentParser, *, sweep: bool = False) -> None:
    """One flag per :class:`~gnnmask.train.RunConfig` field (``--extra``
    and ``--seeds`` for the method options and the seeds)."""
    from gnnmask.train import RunConfig
    from gnnmask.train.config import FALLBACKS, METHOD_FIELDS

    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in dataclasses.fields(RunConfig):
        if f.name in _NOT_FLAGS or (sweep and f.name in _SWEEP_AXES):
            continue
        meta = f.metadata
        group = groups.get(meta["group"]) or groups.setdefault(
            meta["group"], p.add_argument_group(meta["group"]))
        default, text = f.default, meta["help"]
        if default is not None:
            text += f" (default: {default})"
        elif f.name in METHOD_FIELDS or f.name in FALLBACKS:
            text += " (default: the method's)"
        kwargs = dict(default=default, type=_arg_type(str(f.type)), help=text)
        if meta["choices"] is not None:
            kwargs["choices"] = meta["choices"]()
        group.add_argument("--" + f.name.replace("_", "-"), **kwargs)
    method = groups["method"]
    method.add_argument("--extra", action="append", default=[], metavar="KEY=VALUE",
                        help="method option, e.g. mask_scale=none (repeatable; "
                             "`gnnmask methods` lists each method's keys)")
    run = groups["run"]
    run.add_argument("--seeds", default="0", help="e.g. 0,1,2 or 0-4 (default: 0)")
    run.add_argument("--out", default=None, help="output folder (default: runs/<name>)")
    run.add_argument("--quiet", action="store_true", help="no progress output")


def parse_extra(items: list[str]) -> dict:
    """``["k=v", ...]`` to a dict; values parse as JSON when they can."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--extra {item!r} is malformed; allowed: KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def config_from_args(args: argparse.Namespace, **overrides):
    """The :class:`~gnnmask.train.RunConfig` the parsed flags describe."""
    from gnnmask.train import RunConfig

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig)
              if f.name not in _NOT_FLAGS and hasattr(args, f.name)}
    values["extra"] = parse_extra(getattr(args, "extra", None) or [])
    values.update(overrides)
    return RunConfig(**values)


def show_progress(args) -> bool:
    """A progress bar: on a terminal, unless ``--quiet`` or ``--json``."""
    return not getattr(args, "quiet", False) and not getattr(args, "json", False) \
        and sys.stdout.isatty()


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
