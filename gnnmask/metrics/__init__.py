"""Over-smoothing metrics as pure functions, plus per-layer tracing.

Every metric is a pure function of node features ``x`` ``[N, d]`` (any
device; computed on ``x``'s device), and where needed ``edge_index``
``[2, E]`` or class labels ``y`` ``[N]``, returning a python ``float``:

==========================  ==================================================
:func:`mad`                 Mean Average Distance (Chen et al., AAAI 2020)
:func:`mad_gap`             MAD over remote minus neighbouring pairs (same)
:func:`dirichlet_energy`    plain (Rusch et al. 2023) / normalised (Cai & Wang 2020)
:func:`smv`                 DAGNN's smoothness metric value (Liu et al., KDD 2020)
:func:`group_distance_ratio` DGN's inter/intra-class distance ratio (Zhou et al. 2020),
    as PyG's code computes it (``form="paper"``: the paper's equation; metric
    ``group_distance_ratio_paper``)
:func:`effective_rank`      Roy & Vetterli 2007
:func:`numerical_rank`      singular values above a tolerance
:func:`mean_norm`           the representations' scale, mean row norm
==========================  ==================================================

and, for training dynamics, :func:`gradient_flow` (the gradient norm per
trained tensor, Evci et al. 2022) of any model; for evaluation beyond
accuracy (:mod:`gnnmask.metrics.evaluation`), calibration (ECE, reliability),
AUROC of out-of-distribution scores and seeded feature and edge
perturbations.

Shared conventions: the graph is read as undirected, unweighted and simple
(direction ignored, duplicates merged, self-loops dropped); no ``N x N``
matrix is formed beyond ``chunk_size`` entries; MAD is exact in
``O(N d + E d)``; SMV, the group distance ratio and MADGap are exact up to
5,000 nodes and, by default above that, unbiased estimates from a seeded
sample of source nodes (``exact=True`` forces the exact value).

:data:`METRICS` maps names to functions, :func:`compute_metrics` evaluates
several at once, :func:`trace` records them layer by layer during a forward
pass and :func:`format_table` prints the result. This package imports no part
of gnnmask's training engine, methods or CLI.
"""

from ._common import EXACT_MAX_NODES, Graph, as_graph
from .distance import group_distance_ratio, mad, mad_gap, smv
from .energy import dirichlet_energy, mean_norm
from .evaluation import (
    auroc,
    evaluate_model,
    expected_calibration_error,
    fit_temperature,
    hits_at_k,
    holdout_classes,
    ood_scores,
    perturb_edges,
    perturb_features,
    reliability,
)
from .gradflow import gradient_flow
from .rank import effective_rank, numerical_rank
from .registry import METRICS, Metric, compute_metrics, default_metrics
from .trace import format_table, trace

__all__ = [
    "EXACT_MAX_NODES",
    "auroc",
    "evaluate_model",
    "expected_calibration_error",
    "hits_at_k",
    "fit_temperature",
    "holdout_classes",
    "ood_scores",
    "perturb_edges",
    "perturb_features",
    "reliability",
    "METRICS",
    "Metric",
    "Graph",
    "as_graph",
    "compute_metrics",
    "default_metrics",
    "dirichlet_energy",
    "effective_rank",
    "format_table",
    "gradient_flow",
    "group_distance_ratio",
    "mad",
    "mad_gap",
    "mean_norm",
    "numerical_rank",
    "smv",
    "trace",
]
