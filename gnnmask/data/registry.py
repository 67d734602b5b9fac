"""Dataset registry, data-root resolution and the writable cache.

Data root: :func:`resolve_root` picks an explicit ``root`` argument, else the
``GNNMASK_DATA`` environment variable, else ``./datasets``. An explicitly given
root that does not exist is a :class:`~gnnmask.errors.UserError`.

Cache: PyTorch Geometric writes ``processed/`` beside ``raw/``, so datasets are
never loaded from the data root itself (which may be read-only, such as the
shared ``datasets`` folder). :func:`cache_entry` mirrors the expected raw
files of one dataset into ``<cache>/<root-name>-<hash>/<folder>/<subdir>/``
(symbolic links, or copies where links fail) and the PyG class is pointed at
that mirror. ``<cache>`` is ``GNNMASK_CACHE``, else ``$XDG_CACHE_HOME/gnnmask``,
else ``~/.cache/gnnmask``; ``<hash>`` is taken from the resolved absolute data
root, so different roots never share a cache entry. A small stamp file
(size and mtime of every source file) is written after a successful load; a
missing or different stamp wipes the entry, so changed raw files or an
interrupted first load are rebuilt rather than read stale. A per-entry file
lock keeps parallel runs from building the same entry at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gnnmask.errors import UserError
from gnnmask.registry import Registry

STAMP = ".gnnmask-source.json"
CACHE_FORMAT = 1  # bump when the processed files change meaning


@dataclass(frozen=True)
class DatasetInfo:
    """One registry entry.

    ``folder`` is the directory under the data root handed to the PyG class as
    its ``root``; ``subdir`` is the dataset's own directory inside it (holding
    ``raw/``); ``files`` are the files expected there, relative to
    ``<root>/<folder>/<subdir>``. ``edges`` counts directed edges (each
    undirected edge twice) of the graph :func:`~gnnmask.data.load_dataset`
    returns, i.e. after making it undirected.
    """

    name: str
    pyg_class: str
    folder: str
    subdir: str
    pyg_name: str | None
    files: tuple[str, ...]
    nodes: int
    edges: int
    features: int
    classes: int
    split: str
    normalize: bool = True
    tasks: tuple[str, ...] = ("node", "link")
    graphs: int = 1

    @property
    def directory(self) -> str:
        """Dataset directory relative to the data root (``''`` for csbm)."""
        return "/".join(p for p in (self.folder, self.subdir) if p)

    @property
    def splits(self) -> int | None:
        """Number of shipped splits (``split`` must be below it), ``None`` if unlimited."""
        return {"public": 1, "ogb-time": 1, "geom-gcn": 10, "ogb-scaffold": 1}.get(self.split)


def _raw(*names: str) -> tuple[str, ...]:
    return tuple(f"raw/{n}" for n in names)


def _planetoid(name: str, pyg: str, n, e, f, c) -> DatasetInfo:
    files = _raw(*(f"ind.{name}.{s}" for s in ("x", "tx", "allx", "y", "ty", "ally", "graph",
                                                "test.index")))
    return DatasetInfo(name, "Planetoid", "planetoid", pyg, pyg, files, n, e, f, c, "public")


def _geom(name: str, pyg_class: str, folder: str, subdir: str, stem: str, n, e, f, c):
    files = _raw("out1_node_feature_label.txt", "out1_graph_edges.txt",
                 *(f"{stem}_split_0.6_0.2_{i}.npz" for i in range(10)))
    pyg_name = subdir or None
    return DatasetInfo(name, pyg_class, folder, subdir, pyg_name, files, n, e, f, c, "geom-gcn")


def _npz(name: str, pyg_class: str, folder: str, pyg: str, file: str, n, e, f, c):
    return DatasetInfo(name, pyg_class, folder, pyg, pyg, _raw(file), n, e, f, c, "random-20-30")


def _tu(name: str, pyg: str, graphs, n, e, f, c) -> DatasetInfo:
    files = _raw(*(f"{pyg}_{s}.txt" for s in ("A", "graph_indicator", "graph_labels",
                                               "node_labels")))
    return DatasetInfo(name, "TUDataset", "tu", pyg, pyg, files, n, e, f, c, "random-80-10",
                       normalize=False, tasks=("graph",), graphs=graphs)


_OGB_FILES = _raw(*(f"{s}.csv.gz" for s in ("edge", "node-feat", "node-label", "node_year",
                                            "num-node-list", "num-edge-list"))) + tuple(
    f"split/time/{s}.csv.gz" for s in ("train", "valid", "test"))

#: Registry: canonical name -> :class:`DatasetInfo`. Counts are measured on
#: the graphs :func:`~gnnmask.data.load_dataset` returns (the geom-gcn graphs
#: keep their few self-loops, counted once; ogbn-arxiv: OGB's published node
#: count and its symmetrised edge count; csbm: the default parameters). A
#: graph-classification dataset (``tasks == ("graph",)``) counts the nodes and
#: edges of all its ``graphs`` together (the TU and OGB ones: the published
#: totals; sbm-graphs: its default parameters); ogbl-collab serves the link
#: task only and has no classes.
DATASETS: Registry = Registry("dataset", {
    d.name: d
    for d in (
        _planetoid("cora", "Cora", 2708, 10556, 1433, 7),
        _planetoid("citeseer", "CiteSeer", 3327, 9104, 3703, 6),
        _planetoid("pubmed", "PubMed", 19717, 88648, 500, 3),
        _geom("texas", "WebKB", "webkb", "texas", "texas", 183, 574, 1703, 5),
        _geom("wisconsin", "WebKB", "webkb", "wisconsin", "wisconsin", 251, 916, 1703, 5),
        _geom("cornell", "WebKB", "webkb", "cornell", "cornell", 183, 557, 1703, 5),
        _geom("actor", "Actor", "actor", "", "film", 7600, 53411, 932, 5),
        _npz("amazon-computers", "Amazon", "amazon", "Computers",
             "amazon_electronics_computers.npz", 13752, 491722, 767, 10),
        _npz("amazon-photo", "Amazon", "amazon", "Photo", "amazon_electronics_photo.npz",
             7650, 238162, 745, 8),
        _npz("coauthor-cs", "Coauthor", "coauthor", "CS", "ms_academic_cs.npz",
             18333, 163788, 6805, 15),
        _npz("coauthor-physics", "Coauthor", "coauthor", "Physics", "ms_academic_phy.npz",
             34493, 495924, 8415, 5),
        DatasetInfo("ogbn-arxiv", "PygNodePropPredDataset", "ogb", "ogbn_arxiv", "ogbn-arxiv",
                    _OGB_FILES, 169343, 2315598, 128, 40, "ogb-time", normalize=False),
        DatasetInfo("ogbl-collab", "PygLinkPropPredDataset", "ogb", "ogbl_collab",
                    "ogbl-collab", _raw(*(f"{s}.csv.gz" for s in (
                        "edge", "node-feat", "num-node-list", "num-edge-list", "edge_weight",
                        "edge_year"))) + tuple(f"split/time/{s}.pt" for s in
                                               ("train", "valid", "test")),
                    235868, 2358104, 128, 0, "ogb-time", normalize=False, tasks=("link",)),
        _tu("mutag", "MUTAG", 188, 3371, 7442, 7, 2),
        _tu("proteins", "PROTEINS", 1113, 43471, 162088, 3, 2),
        _tu("enzymes", "ENZYMES", 600, 19580, 74564, 3, 6),
        DatasetInfo("ogbg-molhiv", "PygGraphPropPredDataset", "ogb", "ogbg_molhiv",
                    "ogbg-molhiv", _raw(*(f"{s}.csv.gz" for s in (
                        "edge", "edge-feat", "node-feat", "graph-label", "num-node-list",
                        "num-edge-list"))) + tuple(f"split/scaffold/{s}.csv.gz" for s in
                                                   ("train", "valid", "test")),
                    1049163, 2259376, 9, 2, "ogb-scaffold", normalize=False,
                    tasks=("graph",), graphs=41127),
        DatasetInfo("csbm", "", "", "", None, (), 1000, 8000, 64, 4, "random-20-30",
                    normalize=False),
        DatasetInfo("sbm-graphs", "", "", "", None, (), 35373, 141492, 16, 3, "random-80-10",
                    normalize=False, tasks=("graph",), graphs=1200),
        DatasetInfo("csbm-arxiv", "", "", "", None, (), 169343, 2332486, 128, 40,
                    "random-arxiv", normalize=False),
    )
})


def get_info(name: str) -> DatasetInfo:
    """Registry entry for ``name`` (case-insensitive); UserError listing names if unknown."""
    key = str(name).strip().lower()
    if key not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    return DATASETS[key]


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """Data root: ``root`` argument > ``GNNMASK_DATA`` > ``./datasets``.

    An explicitly given root (argument or environment variable) must exist; the
    default ``./datasets`` may be absent (loading then reports missing files).
    """
    given = root if root not in (None, "") else os.environ.get("GNNMASK_DATA") or None
    path = Path(given if given is not None else "datasets").expanduser()
    if given is not None and path.exists() and not path.is_dir():
        raise UserError(f"data root '{given}' is a file, not a folder; pass --data-root DIR "
                        "or set GNNMASK_DATA")
    if given is not None and not path.is_dir():
        raise UserError(
            f"data root '{given}' does not exist; pass --data-root DIR or set GNNMASK_DATA")
    return path.resolve()


def check_root(name: str, root: str | os.PathLike | None) -> Path | None:
    """The data root ``root`` for dataset ``name``: a folder (see
    :func:`resolve_root`) for a dataset read from files; refused when given for
    a generated one (csbm, csbm-arxiv), which reads none."""
    info = get_info(name)
    if info.files:
        return resolve_root(root)
    if root not in (None, ""):
        raise UserError(f"--data-root '{root}' is not read by dataset '{info.name}': it is "
                        "generated in memory; drop --data-root")
    return None


def cache_home() -> Path:
    """Writable cache base.

    ``GNNMASK_CACHE`` > ``$XDG_CACHE_HOME/gnnmask`` > ``~/.cache/gnnmask``.
    """
    if os.environ.get("GNNMASK_CACHE"):
        return Path(os.environ["GNNMASK_CACHE"]).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache").expanduser().resolve() / "gnnmask"


def cache_root(root: Path) -> Path:
    """Cache directory mirroring data root ``root`` (keyed by its absolute path)."""
    root = Path(root).resolve()
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", root.name) or "root"
    return cache_home() / f"{slug}-{hashlib.sha1(str(root).encode()).hexdigest()[:12]}"


def missing_files(info: DatasetInfo, root: Path) -> list[str]:
    """Expected files of ``info`` that are absent under data root ``root``."""
    base = Path(root) / info.directory
    return [f for f in info.files if not (base / f).is_file()]


def check_files(info: DatasetInfo, root: Path) -> None:
    """UserError naming the dataset, the directory searched and the files expected."""
    missing = missing_files(info, root)
    if not missing:
        return
    base = Path(root) / info.directory
    if all(f.startswith("raw/") for f in missing):
        base, missing = base / "raw", [f[4:] for f in missing]
    raise UserError(
        f"dataset '{info.name}' not found under {base}: expected {', '.join(missing)}; "
        "point --data-root or GNNMASK_DATA at a folder holding them")


MANIFEST = "MANIFEST.tsv"


def _manifest(root: Path) -> dict[str, tuple[int, str]]:
    """``{path relative to root: (bytes, sha256)}`` from ``root/MANIFEST.tsv``
    (columns ``path``, ``bytes`` and ``sha256``), or ``{}`` without one."""
    try:
        lines = (Path(root) / MANIFEST).read_text().splitlines()
    except OSError:
        return {}
    head = lines[0].split("\t") if lines else []
    if not {"path", "bytes", "sha256"} <= set(head):
        return {}
    col = {name: i for i, name in enumerate(head)}
    out = {}
    for line in lines[1:]:
        cells = line.split("\t")
        if len(cells) == len(head) and cells[col["bytes"]].isdigit():
            path = cells[col["path"]].removeprefix("./")
            out[path] = (int(cells[col["bytes"]]), cells[col["sha256"]])
    return out


def _parse(path: Path) -> None:
    """Read ``path`` the way the PyG reader will, raising on anything unreadable."""
    import gzip
    import pickle
    import warnings

    import numpy as np

    name = path.name
    if name.endswith(".npz"):
        # PyG's readers load with allow_pickle=False and never touch the pickled
        # object arrays some archives carry (the Coauthor files' names and texts)
        with np.load(path, allow_pickle=False) as f:
            for key in f.files:
                try:
                    f[key]
                except ValueError as e:
                    if "allow_pickle" not in str(e):
                        raise
    elif name.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            while f.read(1 << 20):
                pass
    elif name.startswith("ind.") and not name.endswith(".test.index"):
        with open(path, "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # scipy.sparse.csr in pickles
            pickle.load(f, encoding="latin1")
    else:  # text: node features/labels, edges, test indices
        path.read_text()


def verify_files(info: DatasetInfo, root: Path, checksums: bool = True) -> list[str]:
    """Problems with ``info``'s raw files under ``root``, one line each (``[]``
    when every file is present and reads): a missing file, a size or SHA-256
    that differs from the root's ``MANIFEST.tsv`` (when ``checksums`` and the
    manifest lists the file), or a file that does not parse."""
    import hashlib

    base = Path(root) / info.directory
    manifest = _manifest(root) if checksums else {}
    problems = []
    for f in info.files:
        path = base / f
        rel = str(Path(info.directory) / f)
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        if rel in manifest:
            size, digest = manifest[rel]
            if path.stat().st_size != size:
                problems.append(f"{path}: {path.stat().st_size} bytes, the manifest says {size}")
                continue
            if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                problems.append(f"{path}: SHA-256 differs from the manifest")
                continue
        try:
            _parse(path)
        except Exception as e:  # noqa: BLE001 - any failure to read is the finding
            problems.append(f"{path}: unreadable ({type(e).__name__}: "
                            f"{' '.join(str(e).split())[:80]})")
    return problems


def _fingerprint(info: DatasetInfo, root: Path) -> dict:
    base = Path(root) / info.directory
    stats = {f: (base / f).stat() for f in info.files}
    return {"format": CACHE_FORMAT, "source": str(base),
            "files": {f: [s.st_size, s.st_mtime_ns] for f, s in stats.items()}}


@contextlib.contextmanager
def cache_entry(info: DatasetInfo, root: Path) -> Iterator[Path]:
    """Mirror ``info``'s raw files from data root ``root`` into the cache.

    Yields the root to hand to the PyG class (``<cache>/<folder>``) while
    holding an exclusive lock on the entry, so parallel runs do not process the
    same dataset at once; the stamp is written when the body completes.
    """
    check_files(info, root)
    stamp = _fingerprint(info, root)
    top = cache_root(root)
    dst = top / info.directory
    try:
        dst.mkdir(parents=True, exist_ok=True)
        lock = open(dst.parent / f".{dst.name}.lock", "w")  # closed by `with` below
    except OSError as err:
        raise UserError(f"cache directory '{top}' is not writable ({err.strerror}); "
                        "set GNNMASK_CACHE to a writable folder") from err
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            old = json.loads((dst / STAMP).read_text())
        except (OSError, ValueError):
            old = None
        if old != stamp:  # new, changed or half-built entry: start afresh
            shutil.rmtree(dst)
        for f in info.files:
            src, link = Path(root) / info.directory / f, dst / f
            if not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                try:
                    link.symlink_to(src.resolve())
                except OSError:
                    shutil.copyfile(src, link)
        yield top / info.folder
        if old != stamp:
            (dst / STAMP).write_text(json.dumps(stamp))


def list_datasets(root: str | os.PathLike | None = None, check: bool = False) -> list[dict]:
    """One dict per registry entry: name, counts, split kind, availability and path.

    ``available`` checks that the expected raw files exist under the data root
    (csbm is generated and always available). With ``check``, every file is
    also verified (:func:`verify_files`: sizes and checksums against the
    root's manifest where it lists them, and a parse) and ``problems`` lists
    what failed; ``available`` then means "present and readable".
    """
    base = resolve_root(root)
    rows = []
    for d in DATASETS.values():
        row = dict(name=d.name, tasks=",".join(d.tasks), graphs=d.graphs, nodes=d.nodes,
                   edges=d.edges, features=d.features, classes=d.classes, split=d.split,
                   available=not d.files or not missing_files(d, base),
                   path=str(base / d.directory) if d.files else None)
        if check:
            row["problems"] = verify_files(d, base) if d.files and row["available"] else []
            row["available"] = row["available"] and not row["problems"]
        rows.append(row)
    return rows
