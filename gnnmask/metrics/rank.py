"""Spectral rank measures of a feature matrix."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gnnmask.errors import UserError

from ._common import check_x

__all__ = ["effective_rank", "numerical_rank"]


def _singular_values(x: Tensor) -> Tensor:
    """Singular values of ``x`` in float64, descending (LAPACK/cuSOLVER
    ``gesdd`` does a QR of a tall matrix first, so ``N x d`` costs ``O(N d^2)``)."""
    return torch.linalg.svdvals(x.to(torch.float64))


def effective_rank(x: Tensor) -> float:
    r"""Effective rank (Roy & Vetterli, "The effective rank: a measure of
    effective dimensionality", EUSIPCO 2007).

    .. math::
        p_k = \frac{\sigma_k}{\sum_l \sigma_l}, \quad
        \operatorname{erank}(X) = \exp\Big(-\sum_k p_k \log p_k\Big)

    over the singular values :math:`\sigma_k` of ``x`` itself (not centred),
    with :math:`0 \log 0 = 0`. Lies in ``[1, min(N, d)]``; ``0.0`` for an
    all-zero (or empty) ``x``.
    """
    s = _singular_values(check_x(x))
    total = s.sum()
    if s.numel() == 0 or float(total) == 0.0:
        return 0.0
    p = s / total
    p = p[p > 0]
    return math.exp(float(-(p * p.log()).sum()))


def numerical_rank(x: Tensor, tol: float | None = None) -> float:
    r"""Numerical rank: the number of singular values of ``x`` above ``tol``.

    Default ``tol`` (as ``numpy.linalg.matrix_rank`` and
    ``torch.linalg.matrix_rank``):
    :math:`\sigma_{\max} \cdot \max(N, d) \cdot \varepsilon`, with
    :math:`\varepsilon` the machine epsilon of ``x``'s floating dtype
    (``float32`` for integer input). Singular values are computed in float64.
    Returned as a float (like every metric).
    """
    x = check_x(x)
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float))
                            or not tol >= 0):
        raise UserError(f"tol must be a number >= 0 or None; got {tol!r}")
    s = _singular_values(x)
    if s.numel() == 0:
        return 0.0
    if tol is None:
        tol = float(s.max()) * max(x.shape) * torch.finfo(x.dtype).eps
    return float((s > tol).sum())
