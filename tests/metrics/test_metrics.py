"""Tests of gnnmask.metrics: hand-computed values on tiny graphs, known limits,
agreement with dense references / PyG, chunking, sampling, errors, tracing."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path
from torch_geometric.nn import DiffGroupNorm, GCNConv
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.models import GCN

import gnnmask.metrics
from gnnmask.errors import UserError
from gnnmask.metrics import (
    METRICS,
    compute_metrics,
    dirichlet_energy,
    effective_rank,
    format_table,
    group_distance_ratio,
    mad,
    mad_gap,
    mean_norm,
    numerical_rank,
    smv,
    trace,
)
from gnnmask.metrics._common import pick_sources
from gnnmask.metrics.distance import _mad_bands

SQ2 = math.sqrt(2.0)


def undirected(*pairs) -> torch.Tensor:
    e = torch.tensor(pairs).T
    return torch.cat([e, e.flip(0)], 1)


# Path 0-1-2-3 with unit rows at angles 0, 90, 180, 270 degrees.
PATH_X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
PATH_E = undirected((0, 1), (1, 2), (2, 3))
# Star: centre 0 = (1, 1), leaves 1..4 = e1, e2, e1, e2 (leaves 1 and 3 coincide).
STAR_X = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
STAR_E = undirected((0, 1), (0, 2), (0, 3), (0, 4))
# Two disjoint triangles; all rows of a triangle point the same way.
CLIQ_X = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 2.0], [0.0, 5.0]])
CLIQ_E = undirected((0, 1), (0, 2), (1, 2), (3, 4), (3, 5), (4, 5))


# ------------------------------------------------------ hand computations ---

def test_path_by_hand():
    # Cosine distances D = 1 - cos: 90 degrees apart -> 1, 180 degrees -> 2:
    # D01 = D12 = D23 = D03 = 1, D02 = D13 = 2.
    # all: every node averages {1, 2, 1} = 4/3.
    assert mad(PATH_X) == pytest.approx(4 / 3)
    # neighbours: every neighbour pair has D = 1.
    assert mad(PATH_X, PATH_E, "neighbors") == pytest.approx(1.0)
    # remote: node 0 {2: 2, 3: 1} -> 1.5, node 1 {3: 2} -> 2, node 2 {0: 2} -> 2,
    # node 3 {0: 1, 1: 2} -> 1.5; mean 1.75.
    assert mad(PATH_X, PATH_E, "remote") == pytest.approx(1.75)
    # MADGap(1, 2) = remote - neighbours = 0.75; MADGap(1, 3): only the pair (0, 3)
    # is 3 hops apart, D03 = 1, so 1 - 1 = 0.
    assert mad_gap(PATH_X, PATH_E, 1, 2) == pytest.approx(0.75)
    assert mad_gap(PATH_X, PATH_E, 1, 3) == pytest.approx(0.0, abs=1e-12)
    # Dirichlet: each edge joins orthogonal unit vectors, ||xi - xj||^2 = 2;
    # (2 / N) * 3 edges * 2 = 3.
    assert dirichlet_energy(PATH_X, PATH_E) == pytest.approx(3.0)
    # Normalised: 1 + d = (2, 3, 3, 2); orthogonal rows, so each edge gives
    # 1/(1+di) + 1/(1+dj): 1/2 + 1/3, 1/3 + 1/3, 1/3 + 1/2 -> 7/3.
    assert dirichlet_energy(PATH_X, PATH_E, normalized=True) == pytest.approx(7 / 3)
    # SMV: half Euclidean distance of unit rows: 90 deg -> sqrt(2)/2, 180 deg -> 1.
    # Unordered sum 4 * sqrt(2)/2 + 2 * 1; over 6 pairs -> (sqrt(2) + 1) / 3.
    assert smv(PATH_X) == pytest.approx((SQ2 + 1) / 3)
    # Singular values: X^T X = diag(2, 2) -> p = (1/2, 1/2), erank 2.
    assert effective_rank(PATH_X) == pytest.approx(2.0)
    assert numerical_rank(PATH_X) == 2.0
    # GDR with classes {0, 1}, {2, 3}; Euclidean distances sqrt(2) (90 deg), 2 (180).
    # inter, class 0: (0,2)=2, (0,3)=sqrt2, (1,2)=sqrt2, (1,3)=2 -> 1 + sqrt2/2; same
    # for class 1; numerator 2 (1 + sqrt2/2) / (C-1)^2 = 2 + sqrt2.
    # intra, each class: {0, sqrt2, sqrt2, 0} / 4 = sqrt2/2; denominator sqrt2/2.
    y = torch.tensor([0, 0, 1, 1])
    assert group_distance_ratio(PATH_X, y, eps=0.0) == pytest.approx((2 + SQ2) * SQ2)


def test_star_by_hand():
    a = 1 - 1 / SQ2  # D(centre, leaf): cos 45 degrees
    # neighbours: every edge is centre-leaf.
    assert mad(STAR_X, STAR_E, "neighbors") == pytest.approx(a)
    # remote: the centre has none; leaf 1 has {2: 1, 3: 0, 4: 1} -> the zero pair
    # (identical rows) drops out -> 1. Same for every leaf.
    assert mad(STAR_X, STAR_E, "remote") == pytest.approx(1.0)
    # all: centre a; each leaf {a, 1, 0, 1} -> (a + 2) / 3; mean over 5 nodes.
    assert mad(STAR_X) == pytest.approx((a + 4 * (a + 2) / 3) / 5)
    # hop orders: neighbours are 1 hop, leaves are 2 hops apart.
    assert mad_gap(STAR_X, STAR_E, 1, 2) == pytest.approx(1 - a)
    # Dirichlet: ||(1,1) - e_k||^2 = 1 on 4 edges -> 2 * 4 / 5.
    assert dirichlet_energy(STAR_X, STAR_E) == pytest.approx(1.6)


def test_disjoint_cliques_by_hand():
    # Within a triangle all distances are 0 (same direction): target pairs exist
    # but none is non-zero -> MAD 0. Across: D = 1.
    assert mad(CLIQ_X, CLIQ_E, "neighbors") == 0.0
    assert mad(CLIQ_X, CLIQ_E, "remote") == pytest.approx(1.0)
    assert mad(CLIQ_X) == pytest.approx(1.0)
    # The components never meet (hop distance inf >= 8): gap = 1 - 0.
    assert mad_gap(CLIQ_X, CLIQ_E) == pytest.approx(1.0)
    # Dirichlet: triangle A (1,2,3 on e1): 1 + 4 + 1; B (1,2,5 on e2): 1 + 16 + 9;
    # (2 / 6) * 32.
    assert dirichlet_energy(CLIQ_X, CLIQ_E) == pytest.approx(32 / 3)
    # SMV: 18 of the 30 ordered pairs cross, each sqrt(2)/2.
    assert smv(CLIQ_X) == pytest.approx(18 * SQ2 / 2 / 30)
    # GDR: intra A: 2 * (1 + 2 + 1) / 9, B: 2 * (1 + 4 + 3) / 9 -> denominator 4/3;
    # inter: sqrt(a^2 + b^2) for a in (1, 2, 3), b in (1, 2, 5), mean S / 9 for both
    # classes -> numerator 2 S / 9; ratio S / 6.
    s = sum(math.hypot(a, b) for a in (1, 2, 3) for b in (1, 2, 5))
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    assert group_distance_ratio(CLIQ_X, y, eps=0.0) == pytest.approx(s / 6)


# ------------------------------------------------------------ known limits ---

def test_identical_rows():
    x = torch.tensor([[1.0, -2.0, 3.0]]).repeat(6, 1)
    e = undirected((0, 1), (1, 2), (2, 3), (3, 4), (4, 5))
    for target in ("all", "neighbors", "remote"):
        assert mad(x, e, target) == 0.0
    assert dirichlet_energy(x, e) == 0.0
    # The normalised form vanishes on rows proportional to sqrt(1 + d_i) instead
    # (the kernel of the augmented normalised Laplacian) ...
    scaled = x * (1.0 + torch.tensor([1.0, 2, 2, 2, 2, 1]))[:, None].sqrt()
    assert dirichlet_energy(scaled, e, normalized=True) == pytest.approx(0.0, abs=1e-12)
    # ... and so on identical rows of a regular graph (a 6-cycle).
    cycle = torch.cat([e, torch.tensor([[5, 0], [0, 5]])], 1)
    assert dirichlet_energy(x, cycle, normalized=True) == pytest.approx(0.0, abs=1e-12)
    assert smv(x) == pytest.approx(0.0, abs=1e-6)
    assert effective_rank(x) == pytest.approx(1.0)
    assert numerical_rank(x) == 1.0


def test_orthogonal_rows():
    x = torch.eye(5)
    e = undirected((0, 1), (1, 2), (2, 3), (3, 4))
    for target in ("all", "neighbors", "remote"):
        assert mad(x, e, target) == pytest.approx(1.0)
    assert mad_gap(x, e, 1, 2) == pytest.approx(0.0, abs=1e-12)
    assert smv(x) == pytest.approx(SQ2 / 2)
    assert effective_rank(x) == pytest.approx(5.0)
    assert numerical_rank(x) == 5.0


def test_ranks():
    u, v = torch.randn(30, 1, dtype=torch.float64), torch.randn(1, 8, dtype=torch.float64)
    assert effective_rank(u @ v) == pytest.approx(1.0)
    assert numerical_rank(u @ v) == 1.0
    assert numerical_rank(torch.randn(20, 3) @ torch.randn(3, 6)) == 3.0
    assert numerical_rank(torch.diag(torch.tensor([1.0, 1e-3])), tol=1e-2) == 1.0
    assert effective_rank(torch.zeros(4, 3)) == 0.0
    # Gram-based singular values agree with an SVD (default tolerances as torch's)
    g = torch.Generator().manual_seed(3)
    for shape in ((200, 30), (30, 200)):
        a = torch.randn(shape, generator=g) * torch.logspace(0, -9, shape[1])
        for dtype in (torch.float32, torch.float64):
            assert numerical_rank(a.to(dtype)) == int(torch.linalg.matrix_rank(a.to(dtype)))
        s = torch.linalg.svdvals(a.double())
        p = s / s.sum()
        # (singular values under ~1e-7 sigma_max are dropped: entropy moves ~1e-6)
        assert effective_rank(a) == pytest.approx(math.exp(float(-(p * p.log()).sum())),
                                                  rel=1e-5)


def test_zero_rows_drop_out():
    # Row 2 is zero: its pairs have distance 0 and leave MAD's averages.
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    assert mad(x) == pytest.approx(1.0)  # only the pair (0, 1) counts
    # SMV keeps the N(N-1) normalisation: 2 ordered pairs of sqrt(2)/2 out of 6.
    assert smv(x) == pytest.approx(2 * SQ2 / 2 / 6)
    assert mad(torch.zeros(4, 3)) == 0.0


def test_empty_targets_are_nan():
    x = torch.randn(4, 3)
    no_edges = torch.empty(2, 0, dtype=torch.long)
    assert math.isnan(mad(x, no_edges, "neighbors"))
    assert mad(x, no_edges, "remote") == pytest.approx(mad(x))
    assert math.isnan(mad(x[:1]))
    assert math.isnan(smv(x[:1]))
    # A 4-node path has no pair 8 hops apart.
    assert math.isnan(mad_gap(PATH_X, PATH_E))


# ------------------------------------------------ dense references, chunks ---

def dense_mad(x: torch.Tensor, mask: torch.Tensor) -> float:
    """Straight from the paper's formula, with our zero-distance rule."""
    x = x.double()
    norm = x.norm(dim=1)
    nz = norm > 0
    xh = x / torch.where(nz, norm, 1.0)[:, None]
    dist = 1 - xh @ xh.T
    zero = (xh[:, None] == xh[None]).all(-1) | ~(nz[:, None] & nz[None])
    mask = mask & ~zero
    if not mask.any():
        return 0.0
    cnt, tot = mask.sum(1), (dist * mask).sum(1)
    return float((tot[cnt > 0] / cnt[cnt > 0]).mean())


def hops(edge_index: torch.Tensor, n: int) -> torch.Tensor:
    a = csr_matrix((np.ones(edge_index.shape[1]), edge_index.numpy()), shape=(n, n))
    return torch.from_numpy(shortest_path(a, directed=False, unweighted=True))


@pytest.fixture
def messy():
    """60 nodes, a directed random edge list with duplicates and self-loops,
    a zero row, a positive multiple and an exact duplicate."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 5, generator=g)
    x[3] = 0
    x[7] = 2 * x[8]
    x[10] = x[11]
    e = torch.randint(0, 60, (2, 80), generator=g)
    e = torch.cat([e, e[:, :5], torch.tensor([[4, 9], [4, 9]])], 1)
    return x, e


def test_mad_against_dense(messy):
    x, e = messy
    h = hops(e, 60)
    off = ~torch.eye(60, dtype=torch.bool)
    assert mad(x) == pytest.approx(dense_mad(x, off), rel=1e-10)
    assert mad(x, e, "neighbors") == pytest.approx(dense_mad(x, h == 1), rel=1e-10)
    assert mad(x, e, "remote") == pytest.approx(dense_mad(x, off & (h != 1)), rel=1e-10)


@pytest.mark.parametrize("near,far", [(3, 8), (1, 2), (2, 4)])
def test_mad_gap_against_dense_and_chunks(messy, near, far):
    x, e = messy
    h = hops(e, 60)
    ref = dense_mad(x, h >= far) - dense_mad(x, (h >= 1) & (h <= near))
    for chunk in (1, 7, 1 << 21):
        assert mad_gap(x, e, near, far, chunk_size=chunk) == pytest.approx(ref, abs=1e-10)


def test_mad_gap_bands_match_mad(messy):
    x, e = messy
    neb, rmt, exact = _mad_bands(x, e, 1, 2, None, 10, 0, 1 << 21)
    assert exact
    assert neb == pytest.approx(mad(x, e, "neighbors"), rel=1e-10)
    assert rmt == pytest.approx(mad(x, e, "remote"), rel=1e-10)


def test_smv_and_gdr_chunks(messy):
    x, _ = messy
    y = torch.arange(60) % 4
    for chunk in (1, 7, 100):
        assert smv(x, chunk_size=chunk) == pytest.approx(smv(x), rel=1e-12)
        assert group_distance_ratio(x, y, chunk_size=chunk) == pytest.approx(
            group_distance_ratio(x, y), rel=1e-12)


def test_gdr_matches_pyg():
    g = torch.Generator().manual_seed(1)
    for n, d, c in ((50, 8, 3), (200, 16, 7)):
        x = torch.randn(n, d, generator=g) * 3 + 1
        y = torch.arange(n) % c
        ref = DiffGroupNorm.group_distance_ratio(x, y)
        assert group_distance_ratio(x, y) == pytest.approx(ref, rel=1e-5)
        assert group_distance_ratio(x, y, eps=0.5) == pytest.approx(
            DiffGroupNorm.group_distance_ratio(x, y, eps=0.5), rel=1e-5)



def test_group_distance_ratio_paper_form_by_hand():
    # 1-D rows: class 0 at 0 and 1, class 1 at 3, class 2 at 7
    x, y = torch.tensor([[0.0], [1.0], [3.0], [7.0]]), torch.tensor([0, 0, 1, 2])
    intra = (2 / 4 + 0 + 0) / 3  # class 0: distances 0, 1, 1, 0 over 4 pairs
    # the paper: class-pair means 2.5 (0-1), 6.5 (0-2), 4 (1-2), both orders, / (C-1)^2
    paper = 2 * (2.5 + 6.5 + 4) / 4
    # PyG's code: each class against the rest, 18/4, 9/3 and 17/3, / (C-1)^2
    pyg = (18 / 4 + 9 / 3 + 17 / 3) / 4
    assert group_distance_ratio(x, y, eps=0.0, form="paper") == pytest.approx(paper / intra)
    assert group_distance_ratio(x, y, eps=0.0) == pytest.approx(pyg / intra)
    two = torch.tensor([0, 0, 1, 1])  # with two classes the forms agree
    assert group_distance_ratio(x, two, form="paper") == pytest.approx(
        group_distance_ratio(x, two))
    assert compute_metrics(x, y=y, names=["group_distance_ratio_paper"]) == {
        "group_distance_ratio_paper": pytest.approx(paper / (intra + 1e-5))}
    with pytest.raises(UserError, match="form 'dgn' is invalid; allowed: pyg, paper"):
        group_distance_ratio(x, y, form="dgn")


def test_dirichlet_against_dense(messy):
    x, e = messy
    x = x.double()
    a = torch.zeros(60, 60, dtype=torch.float64)
    a[e[0], e[1]] = 1
    a = ((a + a.T) > 0).double().fill_diagonal_(0)
    lap = torch.diag(a.sum(1)) - a
    assert dirichlet_energy(x, e) == pytest.approx(float(2 * torch.trace(x.T @ lap @ x) / 60))
    a_t = a + torch.eye(60, dtype=torch.float64)
    d_t = a_t.sum(1).rsqrt()
    lap_t = torch.eye(60, dtype=torch.float64) - d_t[:, None] * a_t * d_t[None]
    for chunk in (1, 1 << 21):
        got = dirichlet_energy(x, e, normalized=True, chunk_size=chunk)
        assert got == pytest.approx(float(torch.trace(x.T @ lap_t @ x)), rel=1e-10)
    # storing each edge in both directions gives the same graph
    assert dirichlet_energy(x, torch.cat([e, e.flip(0)], 1)) == pytest.approx(
        dirichlet_energy(x, e))


def test_sampled_rows_are_exact_per_node(messy):
    x, e = messy
    src, is_exact = pick_sources(60, False, 17, 3, "cpu")
    assert not is_exact and len(src) == 17
    xh = x.double() / x.double().norm(dim=1, keepdim=True).clamp_min(1e-300)
    nz = x.norm(dim=1) > 0
    half = torch.cdist(xh, xh) / 2 * (nz[:, None] & nz[None])
    assert smv(x, exact=False, num_samples=17, seed=3) == pytest.approx(
        float(half[src].sum() / 59 / 17), rel=1e-9)
    # MADGap from sampled sources = dense per-node averages over those sources
    h = hops(e, 60)
    rows = torch.zeros(60, dtype=torch.bool)
    rows[src] = True
    ref = (dense_mad(x, (h >= 3) & rows[:, None])
           - dense_mad(x, (h >= 1) & (h <= 2) & rows[:, None]))
    assert mad_gap(x, e, 2, 3, exact=False, num_samples=17, seed=3) == pytest.approx(ref)
    assert smv(x, exact=False, num_samples=500) == pytest.approx(smv(x))  # sample = all


def test_sampled_gdr_close():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(400, 4, generator=g), torch.arange(400) % 3
    y[y == 0] = 5  # labels need not be contiguous
    est = group_distance_ratio(x, y, exact=False, num_samples=240)
    assert est == pytest.approx(group_distance_ratio(x, y), rel=0.05)


# ------------------------------------------------------------------ errors ---

@pytest.mark.parametrize("call,match", [
    (lambda: mad(torch.randn(4, 2), PATH_E, "far"), "target"),
    (lambda: mad(torch.randn(4), None), "shape"),
    (lambda: mad(torch.randn(3, 2), PATH_E, "neighbors"), "node id 3"),
    (lambda: mad(torch.randn(4, 2), None, "remote"), "edge_index"),
    (lambda: dirichlet_energy(torch.randn(4, 2), torch.zeros(3, 2, dtype=torch.long)), "shape"),
    (lambda: mad(torch.tensor([[1.0, math.nan]])), "NaN"),
    (lambda: group_distance_ratio(torch.randn(4, 2), torch.zeros(3, dtype=torch.long)), r"\[4\]"),
    (lambda: group_distance_ratio(torch.randn(4, 2), torch.zeros(4, dtype=torch.long)),
     "2 classes"),
    (lambda: group_distance_ratio(torch.randn(2, 2), torch.tensor([0.0, 1.0])), "integer"),
    (lambda: mad_gap(PATH_X, PATH_E, 3, 3), "far_hops"),
    (lambda: smv(PATH_X, chunk_size=0), "chunk_size"),
    (lambda: smv(PATH_X, exact="yes"), "exact"),
    (lambda: mad_gap(PATH_X, PATH_E, num_samples=0), "num_samples"),
    (lambda: numerical_rank(PATH_X, tol=-1.0), "tol"),
    (lambda: compute_metrics(PATH_X, PATH_E, names=["mad", "madd"]), "madd"),
    (lambda: compute_metrics(PATH_X, names=["dirichlet"]), "edge_index"),
    (lambda: compute_metrics(PATH_X, options={"smv": {"chunk": 3}}), "chunk_size"),
    (lambda: compute_metrics(PATH_X, options={"smv": {"exact": "yes"}, "smvv": {}}), "smvv"),
])
def test_user_errors(call, match):
    with pytest.raises(UserError, match=match):
        call()


# ---------------------------------------------------------------- registry ---

def test_mean_norm_is_the_mean_row_norm():
    assert mean_norm(torch.tensor([[3.0, 4.0], [0.0, 0.0]])) == pytest.approx(2.5)
    assert mean_norm(torch.zeros(0, 3)) == 0.0


def test_registry_and_compute_metrics():
    assert {"mad", "mad_gap", "dirichlet", "dirichlet_normalized", "smv",
            "group_distance_ratio", "group_distance_ratio_paper", "effective_rank",
            "numerical_rank", "norm"} <= set(METRICS)
    out = compute_metrics(PATH_X, PATH_E)
    assert "group_distance_ratio" not in out and len(out) == 8
    assert set(compute_metrics(PATH_X)) == {"mad", "smv", "effective_rank", "numerical_rank",
                                            "norm"}
    assert all(isinstance(v, float) for v in out.values())
    assert out["dirichlet_normalized"] == pytest.approx(7 / 3)
    assert out["norm"] == pytest.approx(1.0)  # unit rows
    out = compute_metrics(PATH_X, PATH_E, torch.tensor([0, 0, 1, 1]), names="group_distance_ratio",
                          options={"group_distance_ratio": {"eps": 0.0}})
    assert out == {"group_distance_ratio": pytest.approx((2 + SQ2) * SQ2)}
    out = compute_metrics(PATH_X, PATH_E, names=["mad"], options={"mad": {"target": "remote"}})
    assert out["mad"] == pytest.approx(1.75)


def test_metrics_imports_no_engine():
    """gnnmask.metrics imports only itself and the leaves gnnmask.errors and
    gnnmask.registry from gnnmask (and the package root it needs stays free of
    the engine, methods and CLI)."""
    root = Path(gnnmask.metrics.__file__).parents[1]
    banned = ("gnnmask.train", "gnnmask.methods", "gnnmask.cli", "gnnmask.experiments")
    for path in [*root.joinpath("metrics").glob("*.py"), root / "__init__.py",
                 root / "errors.py", root / "registry.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith(banned), f"{path.name} imports {name}"
                if path.parent.name == "metrics" and name.startswith("gnnmask"):
                    assert name in ("gnnmask.errors", "gnnmask.registry"), \
                        f"{path.name} imports {name}"


# ----------------------------------------------------------------- tracing ---

def hooks_left(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_trace_gcn():
    torch.manual_seed(0)
    data = type("Data", (), {})()
    data.x, data.edge_index = torch.randn(30, 6), torch.randint(0, 30, (2, 90))
    data.y = torch.arange(30) % 3
    model = GCN(6, 16, num_layers=3, out_channels=4, dropout=0.5)
    model.train()
    rows = trace(model, data)
    assert [r["layer"] for r in rows] == [0, 1, 2, 3]
    assert [r["dim"] for r in rows] == [6, 16, 16, 4]
    assert [r["name"] for r in rows] == ["input", "convs.0", "convs.1", "convs.2"]
    assert set(METRICS) <= set(rows[1])  # y present: all metrics
    assert rows[0]["mad"] == pytest.approx(mad(data.x))
    assert hooks_left(model) == 0 and model.training and model.convs[0].training
    # eval mode: deterministic despite dropout; chosen metrics only
    again = trace(model, data, metrics=["dirichlet"])
    assert [r["dirichlet"] for r in again] == pytest.approx([r["dirichlet"] for r in rows])
    assert set(again[1]) == {"layer", "name", "dim", "dirichlet"}
    table = format_table(rows).splitlines()
    assert len(table) == 6 and table[0].split()[:3] == ["layer", "name", "dim"]
    seen = []
    assert trace(model, data, metrics=["norm"], progress=lambda r, s: seen.append(
        (r["layer"], s >= 0))) == trace(model, data, metrics=["norm"])
    assert seen == [(0, True), (1, True), (2, True), (3, True)]


def test_rank_metrics_share_one_decomposition_with_the_same_values():
    x = torch.randn(40, 12) @ torch.randn(12, 30)  # rank 12
    both = compute_metrics(x, names=["effective_rank", "numerical_rank"])
    assert both == {"effective_rank": effective_rank(x), "numerical_rank": numerical_rank(x)}
    assert both["numerical_rank"] == 12.0


def test_trace_hooks_removed_on_error():
    data = type("Data", (), {})()
    data.x, data.edge_index = torch.randn(5, 3), PATH_E

    def bad(model, data):
        model(data.x, data.edge_index)
        raise RuntimeError("boom")

    model = GCN(3, 4, num_layers=2)
    with pytest.raises(RuntimeError, match="boom"):
        trace(model, data, forward=bad)
    assert hooks_left(model) == 0


class Wrapper(MessagePassing):
    """A MessagePassing module holding another one (only the outer is traced)."""

    def __init__(self):
        super().__init__()
        self.inner = GCNConv(3, 3)

    def forward(self, x, edge_index):
        return self.inner(x, edge_index).relu(), None  # tuple output


class OwnLayers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = GCNConv(3, 8), GCNConv(8, 2)
        self.act1, self.act2 = torch.nn.ReLU(), torch.nn.Identity()

    def trace_modules(self):
        return [self.act1, self.act2]

    def forward(self, x, edge_index):
        return self.act2(self.conv2(self.act1(self.conv1(x, edge_index)), edge_index))


class Outer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.wrap = Wrapper()

    def forward(self, x, edge_index):
        return self.wrap(x, edge_index)[0]


def test_trace_outermost_own_modules_and_names():
    data = type("Data", (), {})()
    data.x, data.edge_index = torch.randn(4, 3), PATH_E
    rows = trace(Outer(), data, metrics=["smv"])
    assert [(r["name"], r["dim"]) for r in rows] == [("input", 3), ("wrap", 3)]
    rows = trace(Wrapper(), data, metrics=["smv"])  # the model itself is the layer
    assert [r["name"] for r in rows] == ["input", "Wrapper"]
    rows = trace(OwnLayers(), data, metrics=["smv"])
    assert [(r["name"], r["dim"]) for r in rows] == [("input", 3), ("act1", 8), ("act2", 2)]
    rows = trace(OwnLayers(), data, metrics=["smv"], layers=["conv2"])
    assert [r["name"] for r in rows] == ["input", "conv2"]
    with pytest.raises(UserError, match="layers"):
        trace(OwnLayers(), data, layers="everything")
    with pytest.raises(UserError, match="MessagePassing"):
        trace(torch.nn.Linear(3, 3), data, forward=lambda m, d: m(d.x))


# --------------------------------------------------------------------- GPU ---

def test_every_device_matches_the_cpu(messy, device):
    x, e = messy
    y = torch.arange(60) % 4
    cpu = compute_metrics(x, e, y)
    other = compute_metrics(x.to(device), e.to(device), y.to(device))
    for name, value in cpu.items():
        assert other[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name
    assert mad(x.to(device), e.to(device), "remote") == pytest.approx(mad(x, e, "remote"))
