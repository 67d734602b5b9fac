"""Argument helpers shared by every ``gnnmask`` sub-command.

The run flags of ``train`` and ``sweep`` are derived from the fields of
:class:`~gnnmask.train.RunConfig` (their help, type and registry of choices),
so a new config field is a new flag without touching the CLI.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

from gnnmask.errors import UserError
from gnnmask.models import MODELS
from gnnmask.presets import get_preset
from gnnmask.train import RunConfig
from gnnmask.train.config import FALLBACKS, METHOD_FIELDS, type_problem


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
    if low in ("true", "yes", "on"):  # a number is never a boolean
        return True
    if low in ("false", "no", "off"):
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
        elif any(f.name in m.defaults for m in MODELS.values()):
            text += " (default: the model's, else the method's)"
        elif f.name in METHOD_FIELDS or f.name in FALLBACKS:
            text += " (default: the method's)"
        kind = _arg_type(str(f.type))
        kwargs = dict(default=default, type=kind, help=text)
        if meta["choices"] is not None:
            kwargs["choices"] = meta["choices"]()
        name = f.name.replace("_", "-")
        if kind is parse_bool:  # --flag, --flag true|false, --no-flag
            kwargs.update(nargs="?", const=True, metavar="true|false")
            group.add_argument(f"--no-{name}", dest=f.name, action="store_const", const=False,
                               default=default, help=f"the same as --{name} false")
        group.add_argument("--" + name, **kwargs)
    method = groups["method"]
    method.add_argument("--extra", action="append", default=[], metavar="KEY=VALUE",
                        help="method option, e.g. mask_scale=none (repeatable; "
                             "`gnnmask methods` lists each method's keys)")
    run = groups["run"]
    run.add_argument("--seeds", default="0", help="e.g. 0,1,2 or 0-4 (default: 0)")
    run.add_argument("--out", default=None, help="output folder (default: runs/<name>)")
    add_control_arguments(p)


def add_control_arguments(p: argparse.ArgumentParser) -> None:
    """Flags that control a run without being part of its configuration."""
    c = p.add_argument_group("control")
    c.add_argument("--config", default=None, metavar="FILE",
                   help="read settings from a TOML or JSON file (e.g. a run's config.json); "
                        "flags given on the command line override it")
    existing = c.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true",
                          help="continue the run in --out, skipping what finished (the "
                               "default when its config matches); refuse an empty folder")
    existing.add_argument("--overwrite", action="store_true",
                          help="remove the finished records in --out first (says which)")
    c.add_argument("--dry-run", action="store_true",
                   help="print the resolved config (and a sweep's cells), write nothing")
    c.add_argument("--log-file", default=None, metavar="FILE",
                   help="also append the log (progress, skipped seeds, warnings) to FILE")
    c.add_argument("--log-every", type=int, default=None, metavar="N",
                   help="log a line every N epochs (default: every 10%% of the epochs when "
                        "stdout is not a terminal; 0: never)")
    c.add_argument("--quiet", action="store_true", help="no progress output")


def output_mode(args) -> str:
    """``auto``, ``resume`` or ``overwrite`` from the control flags."""
    return "overwrite" if args.overwrite else "resume" if args.resume else "auto"


def log_every(args, epochs: int) -> int | None:
    """Epochs between progress lines: ``--log-every``, else 10% of the epochs
    when stdout is not a terminal (a log file, a pipe), else none."""
    if args.log_every is not None:
        if args.log_every < 0:
            raise UserError(f"--log-every {args.log_every} is invalid; allowed: 0 (off) or a "
                            "positive number of epochs")
        return args.log_every or None
    if getattr(args, "quiet", False) or sys.stdout.isatty():
        return None
    return max(1, epochs // 10)


#: Keys a config file may hold besides RunConfig fields, per sub-command.
FILE_KEYS = {"train": ("seeds",), "sweep": ("seeds", "depths", "methods", "jobs",
                                            "sparsities")}


#: Config-file keys that hold a list (or a single value): the type of an item,
#: and what is allowed.
_LIST_KEYS = {
    "seeds": (int, "a non-negative integer, a list of them, or a string such as \"0-4\""),
    "depths": (int, "an integer 1..128 or a list of them"),
    "sparsities": (float, "a fraction 0 <= s < 1 or a list of them"),
    "methods": (str, "a method name or a list of them"),
}


def _list_problem(key: str, value) -> bool:
    """Whether ``value`` is not an item (or a list of items) of list key ``key``;
    strings are accepted wherever the flag's own spelling is (``"0-4"``)."""
    kind = _LIST_KEYS[key][0]
    items = value if isinstance(value, list) else [value]

    def ok(v):
        if isinstance(v, bool):
            return False
        if isinstance(v, str):
            return kind is str or not isinstance(value, list)
        if kind is float:
            return isinstance(v, (int, float)) and math.isfinite(v)
        return isinstance(v, kind)

    return not items or not all(ok(v) for v in items)


def read_config_file(path: str, command: str) -> dict:
    """Argument defaults from a TOML or JSON config file: RunConfig fields,
    ``seeds``, and for sweeps ``depths``/``methods``/``jobs`` (a run's
    ``config.json`` and a sweep's ``sweep.json`` are accepted as written)."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as e:
        raise UserError(f"cannot read --config {path!r}: {e.strerror}") from None
    try:
        if file.suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            values = tomllib.loads(text)
        else:
            values = json.loads(text)
    except ValueError as e:
        raise UserError(f"--config {path!r} is not valid {file.suffix.lstrip('.') or 'JSON'}: "
                        f"{' '.join(str(e).split())[:120]}") from None
    if not isinstance(values, dict):
        raise UserError(f"--config {path!r} holds no table of settings")
    return settings_defaults(values, f"--config {path!r}", command)


def preset_defaults(name: str, command: str) -> dict:
    """Argument defaults from preset ``name`` (see :mod:`gnnmask.presets`)."""
    preset = get_preset(name)
    settings = dict(preset.settings)
    if command == "sweep":  # a sweep's axes: the preset's method and depth as one cell
        for one, axis in (("method", "methods"), ("layers", "depths")):
            if one in settings:
                settings[axis] = settings.pop(one)
    return {**settings_defaults(settings, f"--preset {name}", command), "preset": preset.name}


def settings_defaults(values: dict, source: str, command: str) -> dict:
    """Check the settings of a config file or preset (``source`` names it in
    errors) and return them as argument defaults."""
    if isinstance(values.get("base"), dict):  # a sweep.json
        values = {**values["base"], **{k: values[k] for k in ("depths", "methods", "seeds",
                                                              "sparsities")
                                       if values.get(k) is not None}}
        values.pop("format", None)
    if "seed" in values and "seeds" not in values:  # a run's config.json
        values["seeds"] = [values.pop("seed")]
    values.pop("seed", None)
    fields = {f.name for f in dataclasses.fields(RunConfig)} - set(_NOT_FLAGS) | {"extra"}
    if command == "sweep":
        fields -= set(_SWEEP_AXES)
    allowed = fields | set(FILE_KEYS.get(command, ()))
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise UserError(f"{source}: unknown key {unknown[0]!r}; allowed: "
                        f"{', '.join(sorted(allowed))}")
    out = dict(values)
    for key, value in values.items():
        if key in _LIST_KEYS:
            allowed = _LIST_KEYS[key][1] if _list_problem(key, value) else None
        elif key in fields:
            allowed = type_problem(key, value)
        else:  # jobs
            allowed = None if isinstance(value, int) and not isinstance(value, bool) \
                else "an integer"
        if allowed:
            raise UserError(f"{source}: {key} = {json.dumps(value)} is invalid; "
                            f"allowed: {allowed}")
        if key in _LIST_KEYS:  # one value or a list, as the flag would spell it
            out[key] = ",".join(map(str, value if isinstance(value, list) else [value]))
    if "extra" in out:  # a table (checked above),
        # kept apart from --extra, which adds to (and overrides) the file's options
        out["config_extra"] = out.pop("extra")
    return out


def parse_extra(items: list[str]) -> dict:
    """``["k=v", ...]`` to a dict; values parse as JSON when they can."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--extra {item!r} is malformed; allowed: KEY=VALUE")
        if key in out:
            raise UserError(f"--extra {key!r} is given twice; allowed: each key once")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def config_from_args(args: argparse.Namespace, **overrides):
    """The :class:`~gnnmask.train.RunConfig` the parsed flags describe."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig)
              if f.name not in _NOT_FLAGS and hasattr(args, f.name)}
    values["extra"] = {**getattr(args, "config_extra", {}),
                       **parse_extra(getattr(args, "extra", None) or [])}
    values.update(overrides)
    return RunConfig(**values)


def show_progress(args) -> bool:
    """A progress bar: when stdout is a terminal, unless ``--quiet`` or ``--json``
    (a ``--log-file`` gets the log lines either way)."""
    return not getattr(args, "quiet", False) and not getattr(args, "json", False) \
        and sys.stdout.isatty()


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
