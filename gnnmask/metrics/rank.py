"""Spectral rank measures of a feature matrix."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gnnmask.errors import UserError

from ._common import check_x

__all__ = ["effective_rank", "gram_singular_values", "numerical_rank"]

_EPS64 = torch.finfo(torch.float64).eps


def gram_singular_values(x: Tensor) -> Tensor:
    """Singular values of ``x`` (descending, float64) as square roots of the
    eigenvalues of the Gram matrix of its smaller side, ``O(N d min(N, d))``:
    several times faster than an SVD for wide inputs. Eigenvalues below the
    Gram's rounding level ``min(N, d) * eps * lambda_max`` are set to 0, so
    singular values under about ``1.5e-8 * sqrt(min(N, d)) * sigma_max`` are
    not resolved."""
    x64 = x.to(torch.float64)
    gram = x64.T @ x64 if x.shape[1] <= x.shape[0] else x64 @ x64.T
    lam = torch.linalg.eigvalsh(gram).flip(0)
    floor = float(lam[0]) * min(x.shape) * _EPS64
    return torch.where(lam > floor, lam, 0.0).sqrt()


def effective_rank(x: Tensor, *, singular_values: Tensor | None = None) -> float:
    r"""Effective rank (Roy & Vetterli, "The effective rank: a measure of
    effective dimensionality", EUSIPCO 2007).

    .. math::
        p_k = \frac{\sigma_k}{\sum_l \sigma_l}, \quad
        \operatorname{erank}(X) = \exp\Big(-\sum_k p_k \log p_k\Big)

    over the singular values :math:`\sigma_k` of ``x`` itself (not centred),
    with :math:`0 \log 0 = 0`. Lies in ``[1, min(N, d)]``; ``0.0`` for an
    all-zero (or empty) ``x``. Singular values come from the eigenvalues of the
    float64 Gram matrix; those below its rounding level (about
    ``1.5e-8 sqrt(min(N, d)) sigma_max``) count as 0, which moves the entropy
    by less than ``1e-6`` per singular value. ``singular_values``: those of
    :func:`gram_singular_values` of ``x``, when already computed (as
    :func:`~gnnmask.metrics.compute_metrics` shares them between both ranks).
    """
    x = check_x(x)
    if x.numel() == 0:
        return 0.0
    s = gram_singular_values(x) if singular_values is None else singular_values
    total = s.sum()
    if float(total) == 0.0:
        return 0.0
    p = s / total
    p = p[p > 0]
    return math.exp(float(-(p * p.log()).sum()))


def numerical_rank(x: Tensor, tol: float | None = None, *,
                   singular_values: Tensor | None = None) -> float:
    r"""Numerical rank: the number of singular values of ``x`` above ``tol``.

    Default ``tol`` (as ``numpy.linalg.matrix_rank`` and
    ``torch.linalg.matrix_rank``):
    :math:`\sigma_{\max} \cdot \max(N, d) \cdot \varepsilon`, with
    :math:`\varepsilon` the machine epsilon of ``x``'s floating dtype
    (``float32`` for integer input). Singular values come from the float64
    Gram matrix when ``tol`` is far above its resolution (``tol >= 100 *
    sqrt(min(N, d) * eps64) * sigma_max``: the default for float32 input),
    otherwise from a float64 SVD (e.g. the default for float64 input).
    Returned as a float (like every metric). ``singular_values``: as in
    :func:`effective_rank`.
    """
    x = check_x(x)
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float))
                            or not tol >= 0):
        raise UserError(f"tol must be a number >= 0 or None; got {tol!r}")
    if x.numel() == 0:
        return 0.0
    s = gram_singular_values(x) if singular_values is None else singular_values
    top = float(s[0])
    if tol is None:
        tol = top * max(x.shape) * torch.finfo(x.dtype).eps
    if tol < 100 * math.sqrt(min(x.shape) * _EPS64) * top:
        s = torch.linalg.svdvals(x.to(torch.float64))
    return float((s > tol).sum())
