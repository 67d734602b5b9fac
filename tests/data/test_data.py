"""Tests of gnnmask.data: the shared benchmark datasets, the OGB path, csbm and errors.

The shared datasets are read from ``GNNMASK_DATA`` or, if unset, from
``../shared/datasets`` beside the repository; those tests are skipped only when
neither exists. Every test runs against a fresh temporary ``GNNMASK_CACHE``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.utils import coalesce, homophily, is_undirected

from gnnmask.data import (
    DATASETS,
    evaluate_accuracy,
    list_datasets,
    load_dataset,
    random_split,
    resolve_root,
)
from gnnmask.data.registry import cache_root, verify_files
from gnnmask.errors import UserError

_env = os.environ.get("GNNMASK_DATA")
SHARED = Path(_env) if _env else Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared datasets not found at "
                                  f"{SHARED} (set GNNMASK_DATA)")

# name: (nodes, directed edges after undirecting, features, classes)
EXPECTED = {
    "cora": (2708, 10556, 1433, 7),
    "citeseer": (3327, 9104, 3703, 6),
    "pubmed": (19717, 88648, 500, 3),
    "texas": (183, 574, 1703, 5),
    "wisconsin": (251, 916, 1703, 5),
    "cornell": (183, 557, 1703, 5),
    "actor": (7600, 53411, 932, 5),
    "amazon-computers": (13752, 491722, 767, 10),
    "amazon-photo": (7650, 238162, 745, 8),
    "coauthor-cs": (18333, 163788, 6805, 15),
    "coauthor-physics": (34493, 495924, 8415, 5),
}
RANDOM_SPLIT = [n for n in EXPECTED if n.startswith(("amazon", "coauthor"))]


def _snapshot(root: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture(autouse=True, scope="module")
def cache_env(tmp_path_factory):
    """A fresh writable cache for this module; GNNMASK_DATA must not leak into root=None."""
    with pytest.MonkeyPatch.context() as mp:
        cache = tmp_path_factory.mktemp("cache")
        mp.setenv("GNNMASK_CACHE", str(cache))
        mp.delenv("GNNMASK_DATA", raising=False)
        yield cache


@pytest.fixture(scope="module")
def shared():
    """Loads each shared dataset once (split 0, seed 0) and checks the root stays untouched."""
    if not SHARED.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED} (set GNNMASK_DATA)")
    before, loaded = _snapshot(SHARED), {}

    def get(name):
        if name not in loaded:
            loaded[name] = load_dataset(name, root=SHARED)
        return loaded[name]

    get.before = before
    return get


def _check_graph(data, nodes, edges, features, classes):
    assert (data.num_nodes, data.num_edges, data.num_features, data.num_classes) == (
        nodes, edges, features, classes)
    assert data.x.dtype == torch.float32 and data.x.shape == (nodes, features)
    assert data.y.dtype == torch.long and data.y.shape == (nodes,)
    assert int(data.y.min()) >= 0 and int(data.y.max()) < classes
    assert is_undirected(data.edge_index, num_nodes=nodes)
    assert torch.equal(coalesce(data.edge_index, num_nodes=nodes), data.edge_index)
    masks = [data.train_mask, data.val_mask, data.test_mask]
    for m in masks:
        assert m.dtype == torch.bool and m.shape == (nodes,) and m.any()
    assert int(sum(m.long() for m in masks).max()) == 1  # disjoint


@needs_shared
@pytest.mark.parametrize("name", list(EXPECTED))
def test_shared_dataset_loads(shared, name):
    data = shared(name)
    _check_graph(data, *EXPECTED[name])
    info = DATASETS[name]
    assert data.name == name
    assert (info.nodes, info.edges, info.features, info.classes) == EXPECTED[name]
    if info.normalize:  # row-normalised bag-of-words features
        sums = data.x.sum(dim=1)
        assert torch.allclose(sums[sums > 0], torch.ones(1), atol=1e-4)


@needs_shared
def test_planetoid_public_split(shared):
    for name, n_classes in (("cora", 7), ("citeseer", 6), ("pubmed", 3)):
        data = shared(name)
        sizes = [int(m.sum()) for m in (data.train_mask, data.val_mask, data.test_mask)]
        assert sizes == [20 * n_classes, 500, 1000]
    assert int(shared("cora").train_mask.nonzero()[0]) == 0


@needs_shared
def test_geom_gcn_splits_are_columns(shared):
    s0, s3 = shared("texas"), load_dataset("Texas", root=SHARED, split=3)
    assert [int(m.sum()) for m in (s0.train_mask, s0.val_mask, s0.test_mask)] == [87, 59, 37]
    assert not torch.equal(s0.train_mask, s3.train_mask)
    assert torch.equal(s0.x, s3.x) and torch.equal(s0.edge_index, s3.edge_index)


@needs_shared
@pytest.mark.parametrize("name", RANDOM_SPLIT)
def test_random_split_per_class(shared, name):
    data = shared(name)
    for c in range(data.num_classes):
        in_c = data.y == c
        assert int((data.train_mask & in_c).sum()) == 20
        assert int((data.val_mask & in_c).sum()) == 30
        assert int((data.test_mask & in_c).sum()) == int(in_c.sum()) - 50
    same = random_split(data.y, data.num_classes, seed=0, split=0)
    assert all(torch.equal(a, b) for a, b in zip(same, (data.train_mask, data.val_mask,
                                                         data.test_mask)))


@needs_shared
def test_random_split_determinism_and_cache(shared, cache_env):
    a = shared("amazon-photo")
    processed = next(cache_env.rglob("Photo/processed/data.pt"))
    mtime = processed.stat().st_mtime_ns
    b = load_dataset("amazon-photo", root=SHARED, seed=0)
    c = load_dataset("amazon-photo", root=SHARED, seed=1)
    d = load_dataset("amazon-photo", root=SHARED, seed=0, split=1)
    assert processed.stat().st_mtime_ns == mtime  # second load read the cache
    assert torch.equal(a.train_mask, b.train_mask) and torch.equal(a.x, b.x)
    assert not torch.equal(a.train_mask, c.train_mask)
    assert not torch.equal(a.train_mask, d.train_mask)
    assert not torch.equal(c.train_mask, d.train_mask)


@needs_shared
def test_list_datasets_shared():
    rows = {r["name"]: r for r in list_datasets(SHARED)}
    assert set(rows) == set(DATASETS)
    assert all(rows[n]["available"] for n in EXPECTED)
    arxiv = DATASETS["ogbn-arxiv"]  # present or not, the listing says which
    assert rows["csbm"]["available"] and rows["ogbn-arxiv"]["available"] == all(
        (SHARED / arxiv.directory / f).is_file() for f in arxiv.files)
    assert rows["cora"]["path"] == str(SHARED.resolve() / "planetoid" / "Cora")
    assert rows["cora"]["nodes"] == 2708 and rows["coauthor-cs"]["split"] == "random-20-30"



def test_ogbn_arxiv_from_raw_files(tmp_path, write_csv_gz):
    """A 10-node graph in OGB's raw layout goes through PygNodePropPredDataset."""
    base, n = tmp_path / "ogb" / "ogbn_arxiv", 10
    edges = [(0, 1), (1, 2), (2, 3), (3, 4), (5, 6), (7, 8), (8, 9), (9, 0), (4, 0), (1, 0)]
    labels = [3, 1, 2, 0, 1, 2, 39, 1, 2, 0]
    write_csv_gz(base / "raw" / "edge.csv.gz", edges)
    write_csv_gz(base / "raw" / "node-feat.csv.gz", [[0.5 * i, -1.0, 2.0] for i in range(n)])
    write_csv_gz(base / "raw" / "node-label.csv.gz", [[c] for c in labels])
    write_csv_gz(base / "raw" / "node_year.csv.gz", [[2010 + i] for i in range(n)])
    write_csv_gz(base / "raw" / "num-node-list.csv.gz", [[n]])
    write_csv_gz(base / "raw" / "num-edge-list.csv.gz", [[len(edges)]])
    split = {"train": [0, 1, 2, 3, 4], "valid": [5, 6], "test": [7, 8, 9]}
    for k, idx in split.items():
        write_csv_gz(base / "split" / "time" / f"{k}.csv.gz", [[i] for i in idx])
    before = _snapshot(tmp_path)

    data = load_dataset("OGBN-ARXIV", root=tmp_path)
    assert data.name == "ogbn-arxiv" and data.ogb_name == "ogbn-arxiv"
    assert data.num_nodes == n and data.num_classes == 40
    assert data.y.tolist() == labels and data.x[3].tolist() == [1.5, -1.0, 2.0]
    assert data.num_edges == 2 * 9  # (0, 1) and (1, 0) are one undirected edge
    assert is_undirected(data.edge_index)
    for mask, k in zip((data.train_mask, data.val_mask, data.test_mask), split):
        assert mask.nonzero().view(-1).tolist() == split[k]

    pred = torch.tensor([3, 0, 2, 0, 0, 2, 39, 0, 2, 1])
    assert evaluate_accuracy(data, pred, data.train_mask) == pytest.approx(3 / 5)
    assert evaluate_accuracy(data, pred, data.val_mask) == pytest.approx(2 / 2)
    assert evaluate_accuracy(data, pred, data.test_mask) == pytest.approx(1 / 3)
    assert torch.equal(load_dataset("ogbn-arxiv", root=tmp_path).edge_index, data.edge_index)
    assert _snapshot(tmp_path) == before  # nothing written beside the raw files


def test_csbm_determinism_and_statistics():
    a, b = load_dataset("csbm", seed=3, nodes=2000), load_dataset("csbm", seed=3, nodes=2000)
    c = load_dataset("csbm", seed=4, nodes=2000)
    for k in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(a[k], b[k])
    assert not torch.equal(a.x, c.x) and not torch.equal(a.edge_index, c.edge_index)
    _check_graph(a, 2000, 2000 * 8, 64, 4)
    assert a.y.bincount().tolist() == [500] * 4
    for h in (0.8, 0.3):
        g = load_dataset("csbm", seed=1, nodes=2000, homophily=h, avg_degree=6.0)
        assert abs(homophily(g.edge_index, g.y) - h) < 0.05
        assert abs(g.num_edges / g.num_nodes - 6.0) < 0.1
        assert not g.has_self_loops()
    assert [int(m.sum()) for m in (a.train_mask, a.val_mask, a.test_mask)] == [80, 120, 1800]
    other_split = load_dataset("csbm", seed=3, split=1, nodes=2000)
    assert torch.equal(other_split.x, a.x) and not torch.equal(other_split.train_mask,
                                                                a.train_mask)


def test_csbm_features_follow_snr():
    far = load_dataset("csbm", snr=6.0, features=16)
    near = load_dataset("csbm", snr=0.0, features=16)

    def centroid_spread(d):
        means = torch.stack([d.x[d.y == c].mean(0) for c in range(d.num_classes)])
        return float(means.norm(dim=1).mean())

    assert centroid_spread(far) == pytest.approx(6.0, abs=0.3)
    assert centroid_spread(near) < 0.5


def test_evaluate_accuracy_plain():
    data = load_dataset("csbm")
    pred = data.y.clone()
    pred[data.test_mask.nonzero().view(-1)[:80]] = (data.y[data.test_mask][:80] + 1) % 4
    assert evaluate_accuracy(data, pred, data.train_mask) == 1.0
    assert evaluate_accuracy(data, pred, data.test_mask) == pytest.approx(1 - 80 / 800)
    logits = torch.nn.functional.one_hot(pred, 4).float()
    assert evaluate_accuracy(data, logits, data.test_mask) == pytest.approx(1 - 80 / 800)
    with pytest.raises(UserError, match="no nodes"):
        evaluate_accuracy(data, pred, torch.zeros_like(data.test_mask))


@pytest.mark.parametrize("call, pattern", [
    (lambda: load_dataset("cora2"), r"unknown dataset 'cora2'; allowed: cora, citeseer, .*csbm"),
    (lambda: load_dataset("texas", split=10),
     r"split 10 out of range for dataset 'texas'; allowed: 0\.\.9$"),
    (lambda: load_dataset("cora", split=1),
     r"split 1 out of range for dataset 'cora'; allowed: 0 \(the dataset has one fixed split\)"),
    (lambda: load_dataset("csbm", seed=-1), r"seed -1 out of range"),
    (lambda: load_dataset("csbm", degree=3), r"unknown csbm parameter 'degree'; allowed: nodes"),
    (lambda: load_dataset("csbm", homophily=1.5), r"homophily=1.5 out of range; allowed: 0\.\.1"),
    (lambda: load_dataset("csbm", nodes=100), r"nodes=100 is too small .* at least 204"),
    (lambda: load_dataset("csbm", nodes="many"), r"nodes='many' is not an int"),
    (lambda: load_dataset("cora", nodes=5), r"'cora' takes no parameters; got nodes"),
])
def test_user_errors(call, pattern):
    with pytest.raises(UserError, match=pattern):
        call()


def test_missing_root_and_files(tmp_path, monkeypatch):
    missing = tmp_path / "nope"
    msg = (f"data root '{missing}' does not exist; pass --data-root DIR or set GNNMASK_DATA")
    with pytest.raises(UserError) as err:
        load_dataset("cora", root=missing)
    assert str(err.value) == msg
    monkeypatch.setenv("GNNMASK_DATA", str(missing))
    with pytest.raises(UserError, match="does not exist"):
        list_datasets()

    with pytest.raises(UserError) as err:
        load_dataset("cora", root=tmp_path)
    text = str(err.value)
    assert text.startswith(f"dataset 'cora' not found under {tmp_path / 'planetoid/Cora/raw'}: "
                           "expected ind.cora.x, ind.cora.tx, ")
    assert "ind.cora.test.index" in text and "GNNMASK_DATA" in text and "\n" not in text
    with pytest.raises(UserError, match=r"'ogbn-arxiv' not found under .*ogbn_arxiv: expected "
                                        r"raw/edge.csv.gz, .*split/time/test.csv.gz"):
        load_dataset("ogbn-arxiv", root=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing created in the data root


def test_resolve_root_precedence(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve_root() == tmp_path / "datasets"  # default need not exist
    monkeypatch.setenv("GNNMASK_DATA", str(a))
    assert resolve_root() == a
    assert resolve_root(b) == b
    assert cache_root(a) != cache_root(b) and cache_root(a) == cache_root(tmp_path / "a/../a")
    rows = {r["name"]: r["available"] for r in list_datasets(b)}
    assert rows == {n: n in ("csbm", "csbm-arxiv", "sbm-graphs") for n in DATASETS}  # generated


@needs_shared
def test_cache_links_raw_files_and_rebuilds_on_change(tmp_path, cache_env):
    import shutil

    root = tmp_path / "root"
    shutil.copytree(SHARED / "webkb" / "texas", root / "webkb" / "texas")
    first = load_dataset("texas", root=root)
    entry = cache_root(root) / "webkb" / "texas"
    assert entry.is_relative_to(cache_env) and (entry / "raw").is_dir()
    link = entry / "raw" / "out1_graph_edges.txt"
    assert link.is_symlink() and link.resolve() == root / "webkb/texas/raw/out1_graph_edges.txt"
    processed = entry / "processed" / "data.pt"
    mtime = processed.stat().st_mtime_ns
    load_dataset("texas", root=root)
    assert processed.stat().st_mtime_ns == mtime
    # A changed source file invalidates the entry: the graph is processed again.
    edges = root / "webkb/texas/raw/out1_graph_edges.txt"
    lines = edges.read_text().splitlines()
    edges.write_text("\n".join(lines[:-1]) + "\n")  # drop one edge
    second = load_dataset("texas", root=root)
    assert processed.stat().st_mtime_ns != mtime
    assert second.num_edges < first.num_edges


@needs_shared
def test_shared_root_untouched(shared):
    for name in EXPECTED:  # make sure every dataset went through the cache in this session
        shared(name)
    assert _snapshot(SHARED) == shared.before
    assert not any(p.name == "processed" for p in SHARED.rglob("*"))


def test_check_reads_npz_archives_as_training_does(tmp_path):
    # Coauthor archives carry pickled object arrays (names, texts) that the
    # readers never load: the check must not call them unreadable
    info = DATASETS["coauthor-cs"]
    raw = tmp_path / info.directory / "raw"
    raw.mkdir(parents=True)
    path = raw / "ms_academic_cs.npz"
    np.savez(path, adj_data=np.ones(2, dtype=np.float32),
             idx_to_class=np.array([{"0": "a"}], dtype=object))
    assert verify_files(info, tmp_path) == []
    path.write_bytes(path.read_bytes()[:100])  # a truncated archive is still found
    problems = verify_files(info, tmp_path)
    assert len(problems) == 1 and str(path) in problems[0]


def test_generated_datasets_refuse_a_data_root_they_never_read(tmp_path):
    with pytest.raises(UserError, match=f"--data-root '{tmp_path}' is not read by dataset "
                                        "'csbm': it is generated"):
        load_dataset("csbm", root=tmp_path)
    assert load_dataset("csbm", nodes=300, classes=3, features=8).num_nodes == 300
