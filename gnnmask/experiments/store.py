"""The run store: reading records and checking output folders, shared by runs and sweeps.

A *finished* record is a JSON file that parses as an engine record (a dict
with a ``config`` dict and its test metric, e.g. ``test_acc``); anything else in its place
(truncated, garbage, an earlier format) counts as unfinished and is reported.
What a folder holds decides what a new run may do there (``mode``):

``auto``       finished records of the same configuration are kept and
               skipped; records of a different configuration are a conflict
               (one-line error naming the differences); a folder without any
               finished record (e.g. left by a failed start) is free.
``resume``     as ``auto``, but the folder must already hold a run.
``overwrite``  finished records are removed first (the run says which).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from gnnmask.errors import UserError
from gnnmask.train import read_json
from gnnmask.train.config import upgrade_config

log = logging.getLogger(__name__)
MODES = ("auto", "resume", "overwrite")
#: Config keys that may differ between runs of "the same" configuration
#: (``history`` only says whether the record keeps its per-epoch rows).
IGNORED = ("seed", "device", "data_root", "history")


def read_record(path: Path) -> dict | None:
    """The record at ``path`` if it exists and parses as one, else ``None``."""
    try:
        record = read_json(path)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    ok = isinstance(record, dict) and isinstance(record.get("config"), dict) \
        and f"test_{metric_of(record)}" in record
    return record if ok else None


def metric_of(d: dict[str, Any]) -> str:
    """The primary metric a record or summary holds (``acc`` in records that
    name none: node classification's)."""
    return d.get("metric") or "acc"


def comparable(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` without :data:`IGNORED` keys, the settings it predates
    filled in (:func:`gnnmask.train.config.upgrade_config`)."""
    return {k: v for k, v in upgrade_config(config).items() if k not in IGNORED}


def config_diff(a: dict, b: dict) -> list[str]:
    """Names of the keys in which configs ``a`` and ``b`` differ (ignoring :data:`IGNORED`)."""
    a, b = comparable(a), comparable(b)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UserError(f"unknown output mode {mode!r}; allowed: {', '.join(MODES)}")
    return mode


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_dir(out: Path, what: str = "--out") -> None:
    """:class:`UserError` unless ``out`` is a writable folder or can be created
    as one (nothing is created here)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{what} {str(out)!r} is a file; allowed: a folder (existing or new)")
    base = _nearest_existing(out)
    if not base.is_dir():
        raise UserError(f"{what} {str(out)!r} cannot be created: {str(base)!r} is a file")
    if not os.access(base, os.W_OK | os.X_OK):
        raise UserError(f"{what} {str(out)!r} is not writable ({str(base)!r} is read-only); "
                        "choose another folder")
    try:  # access() trusts permission bits; /proc, full or odd file systems refuse anyway
        os.rmdir(tempfile.mkdtemp(prefix=".gnnmask-probe-", dir=base))
    except OSError as e:
        raise UserError(f"{what} {str(out)!r} cannot be created: {e.strerror} in "
                        f"{str(base)!r}; choose another folder") from None


def check_output_file(path: Path, what: str) -> None:
    """:class:`UserError` unless a file can be written at ``path`` (its folder
    exists or can be created, and ``path`` is not a folder)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {str(path)!r} is a folder; allowed: a file path")
    check_output_dir(path.parent, what=f"{what} folder")


#: What ``gnnmask report`` writes into a folder (glob patterns).
REPORT_OUTPUTS = ("report.md", "results.csv", "accuracy_vs_depth.png", "accuracy_vs_macs.png",
                  "accuracy_vs_sparsity_L*.png", "robustness.png", "reliability.png",
                  "itop_rate.png", "gradient_flow_*.png", "layers_*.png")


def report_outputs(folder: Path) -> list[Path]:
    """The report files in ``folder`` (they describe its records: an
    ``--overwrite`` that replaces the records removes them too)."""
    return sorted({p for pattern in REPORT_OUTPUTS for p in Path(folder).glob(pattern)
                   if p.is_file()})


def remove(paths: list[Path], out: Path) -> None:
    """Delete finished records and what was made of them (``--overwrite``),
    saying which."""
    if not paths:
        return
    shown = ", ".join(str(p.relative_to(out)) for p in paths[:6])
    more = f" and {len(paths) - 6} more" if len(paths) > 6 else ""
    log.warning("overwriting %s: removing %d file(s): %s%s", out, len(paths), shown, more)
    for p in paths:
        p.unlink(missing_ok=True)


def finished_records(out: Path, paths, mode: str, what: str) -> dict[Path, dict | None]:
    """Every record at ``paths`` under ``out`` (``None`` where it is not a
    finished one); refuses ``mode="resume"`` when none is finished. ``what``
    names a unit of work in messages (``"record"``, ``"cell"``)."""
    check_mode(mode)
    found = {p: read_record(p) for p in sorted(paths)}
    if mode == "resume" and not any(found.values()):
        raise UserError(f"nothing to resume in {out}: it holds no finished {what}")
    return found


def readable(found: dict[Path, dict | None], what: str) -> dict[Path, dict]:
    """The finished records of ``found``; each unreadable one is logged as a
    ``what`` that is trained again."""
    for path, record in found.items():
        if record is None:
            log.warning("%s is not a readable record; that %s is trained again", path, what)
    return {p: r for p, r in found.items() if r is not None}


def overwrite(out: Path, found: dict[Path, dict | None], *also: Path) -> None:
    """``--overwrite``: remove the records of ``found``, the files ``also``
    that exist and the report made of them, saying which."""
    remove([*found, *[p for p in also if p.exists()], *report_outputs(out)], out)


def check_same_config(recorded: dict, expected: dict, where: str, replace: str,
                      also: tuple[str, ...] = ()) -> None:
    """Refuse a finished record whose configuration differs from the one to
    run (one line naming the differing keys, ``where`` it is and what
    ``--overwrite`` would ``replace``); the keys ``also`` must match too,
    even those of :data:`IGNORED`."""
    diff = config_diff(recorded, expected)
    diff += [k for k in also if recorded.get(k) != expected.get(k) and k not in diff]
    if diff:
        raise UserError(f"{where} was trained with a different config (differs in "
                        f"{', '.join(diff)}); use --overwrite to replace {replace} or choose "
                        "another --out")
