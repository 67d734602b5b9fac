"""Contextual stochastic block model (CSBM), generated in-process.

Construction, all draws from ``numpy.random.default_rng(seed)`` (never the
global RNG), so a seed fixes the graph exactly:

* labels: balanced, ``nodes // classes`` or one more per class, in a random
  order;
* edges: ``round(nodes * avg_degree / 2)`` distinct undirected edges, no
  self-loops. Each is drawn by picking a node ``u`` uniformly; with probability
  ``homophily`` its partner ``v`` is uniform among the other nodes of ``u``'s
  class, otherwise uniform among the nodes of a uniformly chosen other class.
  Duplicates are discarded and drawing continues until the count is reached,
  so the edge homophily (fraction of intra-class edges) is ``homophily`` and
  the average degree ``avg_degree`` up to sampling noise;
* features: ``x_i = mu_{y_i} + eps_i`` with ``eps_i ~ N(0, I_features)`` and
  class means ``mu_c`` independent uniformly random directions of length
  ``snr`` (so ``snr`` is the mean's norm in units of the per-feature noise
  standard deviation). Features are not row-normalised.
"""

from __future__ import annotations

import numpy as np
import torch

from gnnmask.errors import UserError

#: Parameters of :func:`generate_csbm` and their defaults.
CSBM_DEFAULTS = dict(nodes=1000, classes=4, avg_degree=8.0, homophily=0.8, features=64, snr=1.0)

#: Named presets: ``csbm-arxiv`` has the size of ogbn-arxiv (169,343 nodes,
#: 1,166,243 undirected edges, 128 features, 40 classes; edge homophily 0.65,
#: about ogbn-arxiv's), for benchmarks at that scale without its files.
PRESETS = {
    "csbm": {},
    "csbm-arxiv": dict(nodes=169343, classes=40, avg_degree=2 * 1166243 / 169343,
                       homophily=0.65, features=128, snr=1.0),
}

#: Nodes per class needed by the 20 train / 30 validation / rest test split.
MIN_CLASS_SIZE = 51


def _coerce(key: str, value, kind: type):
    try:
        out = kind(value)
        if isinstance(value, bool) or (kind is int and float(value) != out):
            raise ValueError
    except (TypeError, ValueError):
        raise UserError(f"csbm parameter {key}={value!r} is not a{'n' if kind is int else ''} "
                        f"{kind.__name__}") from None
    return out


def csbm_params(**params) -> dict:
    """Validated CSBM parameters (defaults filled in); UserError on a bad name or value."""
    unknown = sorted(set(params) - set(CSBM_DEFAULTS))
    if unknown:
        raise UserError(f"unknown csbm parameter {unknown[0]!r}; allowed: "
                        f"{', '.join(CSBM_DEFAULTS)}")
    p = {k: _coerce(k, params.get(k, d), type(d)) for k, d in CSBM_DEFAULTS.items()}
    n, c = p["nodes"], p["classes"]
    if c < 2:
        raise UserError(f"csbm classes={c} is too small; allowed: 2 or more")
    if n < MIN_CLASS_SIZE * c:
        raise UserError(f"csbm nodes={n} is too small for classes={c}; allowed: at least "
                        f"{MIN_CLASS_SIZE * c} (20 train + 30 val + 1 test per class)")
    if not 0 < p["avg_degree"] <= (n // c - 1) / 2:
        raise UserError(f"csbm avg_degree={p['avg_degree']} out of range; allowed: "
                        f"0 < avg_degree <= {(n // c - 1) / 2} (half the class size)")
    if not 0 <= p["homophily"] <= 1:
        raise UserError(f"csbm homophily={p['homophily']} out of range; allowed: 0..1")
    if p["features"] < 1:
        raise UserError(f"csbm features={p['features']} out of range; allowed: 1 or more")
    if not p["snr"] >= 0:
        raise UserError(f"csbm snr={p['snr']} out of range; allowed: 0 or more")
    return p


def generate_csbm(nodes: int, classes: int, avg_degree: float, homophily: float,
                  features: int, snr: float, seed: int = 0):
    """Draw one CSBM graph (see the module docstring).

    Returns ``(x, edge_index, y)``: float32 ``[nodes, features]``, long
    ``[2, E]`` with each undirected edge once (``u < v``), long ``[nodes]``.
    """
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(nodes) % classes)
    order = np.argsort(y, kind="stable")
    size = np.bincount(y, minlength=classes)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])

    target = round(nodes * avg_degree / 2)
    keys = np.empty(0, dtype=np.int64)
    for _ in range(1000):
        if len(keys) >= target:
            break
        k = int(1.1 * (target - len(keys))) + 16
        u = rng.integers(nodes, size=k)
        same = rng.random(k) < homophily
        cv = np.where(same, y[u], (y[u] + rng.integers(1, classes, size=k)) % classes)
        v = order[start[cv] + (rng.random(k) * size[cv]).astype(np.int64)]
        ok = u != v
        new = np.minimum(u, v)[ok] * nodes + np.maximum(u, v)[ok]
        keys = np.concatenate([keys, new])
        keys = keys[np.sort(np.unique(keys, return_index=True)[1])]  # first occurrences
    keys = keys[:target]
    edge_index = torch.from_numpy(np.stack([keys // nodes, keys % nodes]))

    means = rng.standard_normal((classes, features))
    means *= snr / np.linalg.norm(means, axis=1, keepdims=True)
    x = means[y] + rng.standard_normal((nodes, features))
    return torch.from_numpy(x).float(), edge_index, torch.from_numpy(y).long()
