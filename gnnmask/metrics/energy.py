"""Dirichlet energy of node features on a graph, and their scale."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._common import DEFAULT_CHUNK, as_graph, check_positive, check_x, row_blocks

__all__ = ["dirichlet_energy", "mean_norm"]


def mean_norm(x: Tensor) -> float:
    r"""The scale of the representations: :math:`\frac1N \sum_i \|x_i\|_2`.
    Without normalisation a deep network can lose its signal (the norm falls
    towards 0 with depth) or blow it up; the Dirichlet energy moves with it,
    so read the two together (or use MAD, which is scale-free)."""
    x = check_x(x)
    return float(torch.linalg.vector_norm(x.float(), dim=1).mean()) if x.numel() else 0.0


def dirichlet_energy(x: Tensor, edge_index, normalized: bool = False,
                     chunk_size: int = DEFAULT_CHUNK) -> float:
    r"""Dirichlet energy of ``x`` on the graph (undirected, unweighted, simple).

    ``normalized=False`` -- the plain form of Rusch, Bronstein & Mishra, "A
    Survey on Oversmoothing in Graph Neural Networks" (2023):

    .. math::
        E(X) = \frac1N \sum_{i \in V} \sum_{j \in \mathcal N(i)} \|x_i - x_j\|_2^2
             = \frac2N \sum_{\{i,j\} \in E} \|x_i - x_j\|_2^2

    Each undirected edge counts twice (once from each end), whether
    ``edge_index`` stores it once or in both directions (PyG's convention):
    the graph is symmetrised and de-duplicated first; self-loops add nothing.

    ``normalized=True`` -- Cai & Wang, "A Note on Over-Smoothing for Graph
    Neural Networks" (2020), with the augmented normalised Laplacian
    :math:`\tilde L = I - \tilde D^{-1/2} \tilde A \tilde D^{-1/2}`,
    :math:`\tilde A = A + I`, :math:`\tilde d_i = 1 + d_i`:

    .. math::
        \tilde E(X) = \operatorname{tr}(X^\top \tilde L X)
          = \tfrac12 \sum_{i,j} \tilde a_{ij}
            \Big\| \frac{x_i}{\sqrt{1+d_i}} - \frac{x_j}{\sqrt{1+d_j}} \Big\|_2^2
          = \sum_{\{i,j\} \in E}
            \Big\| \frac{x_i}{\sqrt{1+d_i}} - \frac{x_j}{\sqrt{1+d_j}} \Big\|_2^2

    (no ``1/N`` factor; the self-loop terms vanish). Isolated nodes add 0 to
    both forms. Computed from per-edge differences (accurate however small the
    energy, unlike :math:`\operatorname{tr}(X^\top L X)` expanded), summed in
    float64 over edge blocks of ``chunk_size // d`` edges. An empty ``x``
    gives ``nan`` for the plain form.
    """
    x = check_x(x)
    check_positive("chunk_size", chunk_size)
    n = x.shape[0]
    graph = as_graph(edge_index, n, x.device)
    h = x.double()  # (x itself when already float64: never modified in place)
    if normalized:
        h = h * (1.0 + graph.degree.double()).rsqrt().unsqueeze(1)
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for sl in row_blocks(graph.num_edges, x.shape[1], chunk_size):
        total += (h[graph.row[sl]] - h[graph.col[sl]]).pow_(2).sum()
    if normalized:
        return float(total)
    return 2.0 * float(total) / n if n else math.nan
