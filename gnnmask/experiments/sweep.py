"""Resumable sweeps over depth x method x seed, optionally in parallel processes.

A sweep folder ``OUT/`` holds::

    sweep.json                               the spec: base config (without
                                             layers, method and seed) and the
                                             depths, methods and seeds run so far
    cells/<method>/L<depth>/seed_<s>.json    one engine record per cell
                                             (see :func:`gnnmask.train.train`)
    .lock                                    held while a sweep writes to OUT

Every cell is the base configuration for its method (:func:`for_method`:
method flags and ``extra`` options reach the methods that read them) with its
depth and seed, resolved with :func:`~gnnmask.train.resolve_config`, so each
method's defaults apply. Every cell is resolved, and the device, the output
folder and the dataset checked, before anything is written. A record is
written atomically (temporary file, fsync, rename) the moment its cell
finishes, so an interrupted sweep (Ctrl-C, SIGKILL, power loss) leaves only
complete records, plus at worst a stale ``.seed_<s>.json.*.tmp`` that the
next run deletes. Re-running skips every cell whose record exists and parses
(and says how many); extending the lists adds cells; a cell whose stored
config differs from the requested one, or a different base config, is
refused with a :class:`~gnnmask.errors.UserError` instead of being mixed in
(output modes: :mod:`gnnmask.experiments.store`).

Cells run seed by seed, deepest first within a seed, so the first complete
depth curve comes early and long cells start first in parallel executors
(local processes, Ray, Slurm: :mod:`gnnmask.experiments.executors`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gnnmask.atomic import temporary_files
from gnnmask.errors import UserError, check_arg
from gnnmask.experiments.executors import make_executor
from gnnmask.experiments.runs import describe
from gnnmask.experiments.store import (
    check_mode,
    check_output_dir,
    check_same_config,
    config_diff,
    finished_records,
    overwrite,
    read_record,
    readable,
)
from gnnmask.methods import get_method_class
from gnnmask.train import (
    RunConfig,
    read_json,
    resolve_config,
    resolve_device,
    train,
    write_json_atomic,
)
from gnnmask.train.config import METHOD_FIELDS, flag
from gnnmask.train.distributed import check_environment
from gnnmask.train.engine import load_data

log = logging.getLogger(__name__)

SPEC_FORMAT = 1
CELL_KEYS = ("layers", "method", "seed")


@dataclass(frozen=True)
class Cell:
    """One (method, depth, seed[, sparsity]) point of a sweep; ``sparsity`` is
    set only on a sweep's sparsity axis, for methods that read it."""

    method: str
    depth: int
    seed: int
    sparsity: float | None = None

    @property
    def name(self) -> str:
        axis = "" if self.sparsity is None else f"/s{self.sparsity:g}"
        return f"{self.method}/L{self.depth}{axis}/seed_{self.seed}"

    def path(self, out: Path) -> Path:
        return out / "cells" / f"{self.name}.json"

    @classmethod
    def from_path(cls, path: Path, out: Path) -> Cell:
        """The cell a record file belongs to (``ValueError`` if the path is not one)."""
        parts = path.relative_to(Path(out) / "cells").parts
        if len(parts) not in (3, 4) or not parts[1].startswith("L") \
                or not parts[-1].startswith("seed_") or not parts[-1].endswith(".json"):
            raise ValueError(str(path))
        sparsity = None
        if len(parts) == 4:
            if not parts[2].startswith("s"):
                raise ValueError(str(path))
            sparsity = float(parts[2][1:])
        return cls(parts[0], int(parts[1][1:]), int(parts[-1][5:-5]), sparsity)


class SweepError(UserError):
    """One or more cells failed; the finished records are kept."""


def cell_order(depths: list[int], methods: list[str], seeds: list[int],
               sparsities: list[float] | None = None) -> list[Cell]:
    """Seed by seed, deepest first, methods interleaved; on a sparsity axis,
    one cell per sparsity for methods that read it (an iterative method: one
    cell, at the highest sparsity, whose rounds pass through the others) and
    one for the others (e.g. dense, the reference)."""
    def axis(m: str) -> list[float | None]:
        cls = get_method_class(m)
        if not sparsities or "sparsity" not in cls.reads:
            return [None]
        return [max(sparsities)] if cls.iterative else sorted(sparsities)

    return [Cell(m, d, s, x) for s in seeds for d in sorted(depths, reverse=True)
            for m in methods for x in axis(m)]


def cell_config(base: RunConfig, cell: Cell, sparsities: list[float] | None = None) -> RunConfig:
    """The configuration of ``cell`` (resolved): ``base`` for its method
    (:func:`for_method`) at its depth, seed and sparsity; an iterative method
    also stops exactly at the axis' other sparsities (``extra["stops"]``)."""
    changes: dict[str, Any] = {"layers": cell.depth, "seed": cell.seed}
    if cell.sparsity is not None:
        changes["sparsity"] = cell.sparsity
    config = for_method(base, cell.method, **changes)
    if cell.sparsity is not None and get_method_class(cell.method).iterative:
        stops = sorted(x for x in sparsities or [] if x < cell.sparsity)
        if stops:
            config = config.replace(extra={**config.extra, "stops": stops})
    return resolve_config(config)


def check_sparsities(sparsities, base: RunConfig, methods: list[str]) -> list[float] | None:
    """The sparsity axis, checked: distinct values ``0 <= s < 1``, no
    ``--sparsity`` beside it, and a method that reads it."""
    if sparsities is None:
        return None
    values = _unique(float(x) for x in sparsities)
    if not values or any(not 0.0 <= x < 1.0 for x in values):
        raise UserError(f"--sparsities {sparsities!r} is invalid; allowed: distinct fractions "
                        "0 <= s < 1, e.g. 0.5,0.8,0.9")
    if base.sparsity is not None:
        raise UserError("--sparsity and --sparsities were both given; allowed: one of them")
    if not any("sparsity" in get_method_class(m).reads for m in methods):
        raise UserError(f"--sparsities: no method of the sweep ({', '.join(methods)}) reads a "
                        "sparsity")
    return sorted(values)


def _unique(values) -> list:
    return list(dict.fromkeys(values))


def _check_lists(depths, methods, seeds) -> tuple[list[int], list[str], list[int]]:
    depths, methods, seeds = _unique(depths), _unique(methods), _unique(seeds)
    if not depths or not methods or not seeds:
        raise UserError("a sweep needs at least one depth, one method and one seed")
    for d in depths:
        if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 128:
            raise UserError(f"depth {d!r} is out of range; allowed: integers 1..128")
    for m in methods:
        get_method_class(m)
        if not m or "/" in m or m.startswith("."):
            raise UserError(f"method name {m!r} cannot name a folder")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise UserError(f"seed {s!r} is invalid; allowed: non-negative integers")
    return depths, methods, seeds


def for_method(base: RunConfig, method: str, **changes) -> RunConfig:
    """``base`` for one of a sweep's methods: method-specific fields and
    ``extra`` options that this method does not read are dropped (a sweep's
    flags apply to the methods that read them)."""
    cls = get_method_class(method)
    unread = {f: None for f in METHOD_FIELDS if f not in cls.reads}
    extra = {k: v for k, v in base.extra.items() if k in cls.options}
    return base.replace(method=method, extra=extra, **unread, **changes)


def _check_used(base: RunConfig, methods: list[str]) -> None:
    """Refuse a method flag or ``extra`` key that no method of the sweep reads."""
    classes = [get_method_class(m) for m in methods]
    for f in METHOD_FIELDS:
        if getattr(base, f) is not None and not any(f in c.reads for c in classes):
            raise UserError(f"{flag(f)} is not used by any method of the sweep "
                            f"({', '.join(methods)})")
    for key in base.extra:
        if not any(key in c.options for c in classes):
            allowed = sorted({k for c in classes for k in c.options})
            raise UserError(f"unknown --extra key {key!r} for the sweep's methods; allowed: "
                            f"{', '.join(allowed) or 'none'}")


def _base_dict(base: RunConfig) -> dict[str, Any]:
    return {k: v for k, v in base.to_dict().items() if k not in CELL_KEYS}


def _check_spec(out: Path, base: RunConfig, methods: list[str]) -> dict | None:
    """The stored spec, after checking its base config matches ``base``.

    Bases are compared as resolved per method, so an explicit value equal to
    a method default is not a difference.
    """
    path = out / "sweep.json"
    if not path.exists():
        return None
    try:
        spec = read_json(path)
        old = RunConfig.from_dict({**spec["base"], "layers": 2, "seed": 0})
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path} is unreadable ({e}); choose another --out") from None
    for method in _unique([*methods, *spec.get("methods", [])]):
        try:
            a = resolve_config(for_method(old, method)).to_dict()
            b = resolve_config(for_method(base, method, layers=2, seed=0)).to_dict()
        except UserError:  # e.g. a method no longer registered: compare the raw values
            a, b = spec["base"], _base_dict(base)
        diff = config_diff(a, b)
        if diff:
            raise UserError(f"{out} holds a sweep with a different base config (differs in "
                            f"{', '.join(diff)}); use --overwrite to replace it or choose "
                            "another --out")
    return spec


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` so that two sweeps never write the same folder."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UserError(f"another sweep is writing to {out}; wait for it or choose "
                            "another --out") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _clean_stale(out: Path) -> None:
    """Delete temporary files left by a killed process (we hold the lock)."""
    for tmp in [*temporary_files(out / "cells", recursive=True), *temporary_files(out)]:
        tmp.unlink(missing_ok=True)


# -- running one cell (in this process or a worker) -----------------------------
@functools.lru_cache(maxsize=2)
def _dataset(task: str, name: str, root, split: int, seed: int):
    return load_data(RunConfig(task=task, dataset=name, data_root=root, split=split,
                               seed=seed))


def run_cell(config: dict[str, Any], path: str) -> dict[str, Any]:
    """Train one resolved config and write its record atomically to ``path``."""
    cfg = RunConfig.from_dict(config)
    data = _dataset(cfg.task, cfg.dataset, cfg.data_root, cfg.split, cfg.seed)
    record = train(cfg, data=data)
    write_json_atomic(path, record)
    return record


def _describe(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if isinstance(err, UserError) else f"{type(err).__name__}: {text}"


# -- the sweep ---------------------------------------------------------------
def sweep(
    base: RunConfig,
    depths: list[int],
    methods: list[str],
    seeds: list[int],
    out: str | os.PathLike,
    jobs: int = 1,
    progress: bool = False,
    *,
    mode: str = "auto",
    sparsities: list[float] | None = None,
    executor=None,
    on_cell: Callable[[Cell, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Train every (depth, method, seed) cell not yet finished under ``out``.

    Args:
        base: shared settings; its ``layers``, ``method`` and ``seed`` are ignored.
        depths, methods, seeds: the grid (duplicates dropped).
        out: the sweep folder (see the module docstring).
        jobs: parallel worker processes (``1``: train in this process) of the
            default, local executor.
        progress: a tqdm bar over cells, with one line per finished cell.
        mode: ``auto``, ``resume`` or ``overwrite`` (see
            :mod:`gnnmask.experiments.store`).
        sparsities: a sparsity axis (see :func:`cell_order`; cells are then
            keyed by method, depth, sparsity and seed).
        executor: where the cells run (:mod:`gnnmask.experiments.executors`;
            default: local, ``jobs`` processes).
        on_cell: called as ``on_cell(cell, record)`` after each cell trained here.

    Every cell's configuration, the device, the output folder and the dataset
    are checked before anything is written. Returns the records of all
    requested cells (methods, then depths, then seeds, in the given order),
    finished earlier or now. Raises :class:`SweepError` naming the failed
    cells after the others finished.
    """
    check_arg("sweep", "base", base, RunConfig, "a gnnmask.train.RunConfig")
    executor = executor or make_executor("local", jobs=jobs)
    check_mode(mode)
    depths, methods, seeds = _check_lists(depths, methods, seeds)
    out = Path(out)
    _check_used(base, methods)
    sparsities = check_sparsities(sparsities, base, methods)
    cells = cell_order(depths, methods, seeds, sparsities)
    configs = {c: cell_config(base, c, sparsities) for c in cells}
    resolve_device(base.device)
    check_environment(base)
    check_output_dir(out)
    found = finished_records(out, out.glob("cells/**/seed_*.json"), mode, "cell")
    todo = [c for c in cells if mode == "overwrite" or found.get(c.path(out)) is None]
    if todo:  # a bad dataset or data root fails here, before anything is written
        first = configs[todo[0]]
        _dataset(first.task, first.dataset, first.data_root, first.split, first.seed)

    with _lock(out):
        _clean_stale(out)
        if mode == "overwrite":
            overwrite(out, found, out / "sweep.json")
            found = {}
        done = readable(found, "cell")
        records: dict[Cell, dict] = {}
        for cell in cells:
            record = done.get(cell.path(out))
            if record is None:
                continue
            check_same_config(record["config"], configs[cell].to_dict(),
                              f"cell {cell.name} in {out}", "the sweep", also=("seed",))
            records[cell] = record
        spec = _check_spec(out, base, methods) if any(found.values()) else {}
        todo = [c for c in cells if c not in records]
        write_json_atomic(out / "sweep.json", {
            "format": SPEC_FORMAT,
            "base": _base_dict(base),
            "depths": sorted(_unique([*(spec or {}).get("depths", []), *depths])),
            "methods": _unique([*(spec or {}).get("methods", []), *methods]),
            "seeds": _unique([*(spec or {}).get("seeds", []), *seeds]),
            "sparsities": sorted(_unique([*((spec or {}).get("sparsities") or []),
                                          *(sparsities or [])])) or None,
        })
        log.info("sweep: %s / %s (hidden %d), depths %s x methods %s x seeds %s = %d cells "
                 "-> %s/", configs[cells[0]].dataset, base.model, base.hidden,
                 ",".join(map(str, depths)), ",".join(methods), ",".join(map(str, seeds)),
                 len(cells), out)
        if records:
            log.info("%s: %d of %d cells finished earlier, skipped", out, len(records),
                     len(cells))

        bar = None
        if progress and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc="sweep",
                       unit="cell", dynamic_ncols=True)
        failures: list[tuple[Cell, BaseException]] = []

        def done(cell: Cell, record: dict) -> None:
            records[cell] = record
            if bar is not None:
                bar.update()
                bar.write(f"{cell.name:<28} {describe(record)}")
            if on_cell is not None:
                on_cell(cell, record)

        try:
            calls = [(c, (configs[c].to_dict(), str(c.path(out)))) for c in todo]
            for cell, result in executor.run(run_cell, calls):
                if not isinstance(result, BaseException):
                    done(cell, result)
                    continue
                failures.append((cell, result))
                if isinstance(result, UserError):  # e.g. a missing dataset: stop early
                    break
        finally:
            if bar is not None:
                bar.close()
            _dataset.cache_clear()

    if failures:
        (cell, err), others = failures[0], [c.name for c, _ in failures[1:]]
        also = f" (also failed: {', '.join(others[:5])}{', ...' if len(others) > 5 else ''})" \
            if others else ""
        raise SweepError(f"cell {cell.name} failed: {_describe(err)}{also}; finished records "
                         f"are kept in {out}, re-run to retry")
    return [records[c] for c in sorted(cells, key=lambda c: (methods.index(c.method),
                                                             depths.index(c.depth),
                                                             -1 if c.sparsity is None else
                                                             c.sparsity, seeds.index(c.seed)))]


def load_cells(out: str | os.PathLike) -> tuple[list[tuple[Cell, dict[str, Any]]], list[Path]]:
    """Every finished cell record under ``out/cells``, and the paths of the
    cell files that are not readable records (truncated, garbage, misnamed)."""
    found, unreadable = [], []
    for path in sorted(Path(out).glob("cells/**/seed_*.json")):
        record = read_record(path)
        try:
            cell = Cell.from_path(path, Path(out))
        except ValueError:
            record = None
        if record is None:
            unreadable.append(path)
        else:
            found.append((cell, record))
    return found, unreadable
