"""Reproducible initialisation of frozen weights and of mask scores.

Every draw comes from a dedicated CPU ``torch.Generator`` seeded with an
explicit ``seed``, in a fixed target order, in float32, and is then copied to
the tensor's device and dtype. So the frozen weights are a pure function of
``(seed, recipe, target order and shapes)``, bit-identical on any device and
untouched by the global RNG: tickets (:mod:`gnnmask.masks.tickets`) store only
the seed and the recipe. Scores use a second generator derived from the same
seed, so changing the score init never changes the weights.

Kaiming conventions (He et al. 2015), shared by weights and scores:

* ``fan_in`` follows PyTorch: ``shape[1] * prod(shape[2:])`` for tensors of
  dimension >= 2 (``[out, in]`` for ``nn.Linear``/PyG ``Linear``; ``GCN2Conv``'s
  square ``[C, C]`` weights read the same either way); 1-D tensors (biases,
  with ``mask_bias=True``) use ``numel``.
* gain ``sqrt(2)`` (ReLU), mode ``fan_in``: ``std = sqrt(2 / fan_in)``.

Weights (:data:`WEIGHT_INITS`):

``kaiming-uniform``  ``U(-b, b)``, ``b = sqrt(3) * std = sqrt(6 / fan_in)``.
``kaiming-normal``   ``N(0, std^2)``.
``signed-constant``  ``±std``, sign uniformly random (edge-popup's "signed
                     Kaiming constant", Ramanujan et al. 2020).
``scaled-signed-constant``  ``±std'`` with ``fan_in`` scaled by the kept
                     fraction ``1 - sparsity``: ``std' = sqrt(2 / (fan_in (1 -
                     sparsity)))`` (edge-popup's ``scale_fan``), i.e. the
                     variance a layer of ``(1 - s) fan_in`` random inputs needs.
``orthogonal``       ``sqrt(2) Q`` with ``Q`` a random (semi-)orthogonal matrix
                     (orthonormal rows or columns, whichever are fewer; QR of
                     a Gaussian matrix, Saxe et al. 2014): norms preserved
                     through depth, up to the ReLU gain.

There is no sparse orthogonal (EOI) choice for frozen weights: an EOI matrix
at the ticket's own density leaves the mask nothing to choose (every entry
outside its support is zero, so the mask must equal the support), and at
density 1 it is a dense orthogonal matrix, ``orthogonal``.

Sparse trainable weights (:func:`sparse_init`, :data:`SPARSE_INITS`), after
the mask is chosen:

``default``          the model's own initialisation, masked.
``gradient-flow``    Evci et al. (AAAI 2022): every output unit's kept
                     weights drawn from ``N(0, 2 / fan_in_j)`` with ``fan_in_j``
                     its *actual* number of kept inputs, so each unit's output
                     variance is that of a dense He-initialised unit.
``eoi``              the mask of each layer replaced by the support of an EOI
                     matrix with the layer's number of kept weights, the
                     weights by ``sqrt(2) A``.

Scores (:data:`SCORE_INITS`): ``kaiming-uniform``, ``kaiming-normal`` (as
above), ``torch-default`` (``U(-b, b)``, ``b = 1/sqrt(fan_in)``, as
``kaiming_uniform_(a=sqrt(5))``), ``uniform`` (``U(0, 1)``) and ``constant``
(all 1; note that ties are then broken by position, see :mod:`gnnmask.masks.select`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from gnnmask.errors import check_choice
from gnnmask.registry import Registry

WEIGHT_INITS = Registry("weight init", {
    "kaiming-uniform": "U(-b, b) with b = sqrt(6 / fan_in) (He et al. 2015).",
    "kaiming-normal": "N(0, 2 / fan_in) (He et al. 2015).",
    "signed-constant": "±sqrt(2 / fan_in) with a random sign (edge-popup's signed Kaiming "
                       "constant, Ramanujan et al. 2020).",
    "scaled-signed-constant": "Signed constant with fan_in scaled by the kept fraction 1 - "
                              "sparsity (edge-popup's scale_fan).",
    "orthogonal": "sqrt(2) times a random (semi-)orthogonal matrix (Saxe et al. 2014).",
})
SPARSE_INITS = Registry("sparse init", {
    "default": "The model's own initialisation, masked.",
    "gradient-flow": "Each unit's kept weights from N(0, 2 / its kept fan-in) (Evci et al. "
                     "2022).",
    "eoi": "Exact orthogonal initialisation: the mask becomes the support of a sparse "
           "orthogonal matrix, the weights sqrt(2) times it (Nowak et al. 2023).",
})
SCORE_INITS = Registry("score init", {
    "kaiming-uniform": "U(-b, b) with b = sqrt(6 / fan_in), as the weights.",
    "kaiming-normal": "N(0, 2 / fan_in), as the weights.",
    "torch-default": "U(-b, b) with b = 1 / sqrt(fan_in): kaiming_uniform_(a=sqrt(5)), the "
                     "score init of edge-popup's reference code (Ramanujan et al. 2020).",
    "uniform": "U(0, 1).",
    "constant": "All 1 (ties are then broken by position).",
})
RELU_GAIN = math.sqrt(2.0)
_SCORE_STREAM = 0x9E3779B97F4A7C15  # golden-ratio offset: an independent score seed


def fan_in(shape: Sequence[int]) -> int:
    """PyTorch's fan-in: ``shape[1] * prod(shape[2:])``; ``numel`` for 1-D."""
    shape = tuple(shape)
    if len(shape) < 2:
        return max(1, math.prod(shape))
    return max(1, shape[1] * math.prod(shape[2:]))


def kaiming_std(shape: Sequence[int]) -> float:
    """``sqrt(2 / fan_in)``: He et al.'s standard deviation for ReLU layers."""
    return RELU_GAIN / math.sqrt(fan_in(shape))


def generator(seed: int, stream: int = 0) -> torch.Generator:
    """A CPU generator for ``seed`` (``stream`` 0: weights, 1: scores)."""
    return torch.Generator().manual_seed((int(seed) + stream * _SCORE_STREAM) % 2**64)


def draw(
    init: str, shape: Sequence[int], gen: torch.Generator, sparsity: float = 0.0,
    out: Tensor | None = None,
) -> Tensor:
    """A float32 CPU tensor of ``shape`` drawn by ``init`` from ``gen`` (into
    ``out`` when given: a contiguous float32 CPU tensor, same values)."""
    shape = tuple(shape)
    t = torch.empty(shape) if out is None else out
    std = kaiming_std(shape)
    if init == "kaiming-uniform":
        return t.uniform_(-math.sqrt(3.0) * std, math.sqrt(3.0) * std, generator=gen)
    if init == "kaiming-normal":
        return t.normal_(0.0, std, generator=gen)
    if init == "torch-default":  # torch.nn.init.kaiming_uniform_(t, a=sqrt(5))
        bound = 1.0 / math.sqrt(fan_in(shape))
        return t.uniform_(-bound, bound, generator=gen)
    if init in ("signed-constant", "scaled-signed-constant"):
        if init == "scaled-signed-constant":
            std = RELU_GAIN / math.sqrt(fan_in(shape) * (1.0 - sparsity))
        return t.bernoulli_(0.5, generator=gen).mul_(2 * std).sub_(std)
    if init == "orthogonal":
        return t.copy_(RELU_GAIN * orthogonal_matrix(shape, gen))
    if init == "uniform":
        return t.uniform_(0.0, 1.0, generator=gen)
    if init == "constant":
        return t.fill_(1.0)
    raise AssertionError(init)  # names are checked by the callers


def _matrix_shape(shape: Sequence[int]) -> tuple[int, int]:
    """``[out, in, *kernel]`` seen as ``out x (in * kernel)``."""
    shape = tuple(shape)
    return (shape[0], math.prod(shape[1:])) if len(shape) > 1 else (1, shape[0])


def orthogonal_matrix(shape: Sequence[int], gen: torch.Generator) -> Tensor:
    """A float32 random (semi-)orthogonal tensor of ``shape`` (as a matrix
    ``out x in``): QR of a Gaussian matrix with the signs of ``R``'s diagonal
    folded in (Haar-distributed)."""
    n, m = _matrix_shape(shape)
    a = torch.randn(max(n, m), min(n, m), generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))
    return (q if n >= m else q.t()).reshape(shape).float()


def eoi_matrix(shape: Sequence[int], density: float,
               gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """A sparse semi-orthogonal matrix at ``density`` and its mask
    (Nowak et al., ICML 2024).

    Starting from the identity ``I_{n x m}`` (``n <= m``, transposed
    otherwise), random Givens rotations of column pairs ``(i, j)`` by random
    angles are applied while they keep the number of non-zeros at or below
    ``k = round(density * n * m)`` (``n x m`` is ``out x in``). Right
    multiplication by a rotation keeps ``A A^T = I``. The mask is the support of
    ``A``, completed with random zero-valued entries to exactly ``k`` (what
    the paper does for convolutions): the weights are exactly orthogonal and
    the density exact. A density below ``1 / max(n, m)`` is out of reach and
    gives the identity's support. Returns ``(A, mask)`` as float32 and bool
    tensors of ``shape``."""
    n, m = _matrix_shape(shape)
    rows, cols = min(n, m), max(n, m)
    k = int(math.floor(density * n * m + 0.5))
    a = torch.eye(rows, cols, dtype=torch.float64)
    support = a != 0
    counts = support.sum(0)
    nnz = rows
    for _ in range(64 * cols * max(1, int(math.log2(max(2, k / rows))))):
        if nnz >= k:
            break
        i, j = torch.randint(cols, (2,), generator=gen).tolist()
        if i == j:
            continue
        union = support[:, i] | support[:, j]
        size = int(union.sum())
        if nnz - int(counts[i]) - int(counts[j]) + 2 * size > k:
            continue  # this pair would overshoot; another may fit
        phi = float(torch.rand((), generator=gen, dtype=torch.float64)) * 2 * math.pi
        c, s = math.cos(phi), math.sin(phi)
        ai, aj = a[:, i].clone(), a[:, j].clone()
        a[:, i], a[:, j] = c * ai + s * aj, -s * ai + c * aj
        nnz += 2 * size - int(counts[i]) - int(counts[j])
        support[:, i] = support[:, j] = union
        counts[i] = counts[j] = size
    mask = support.clone()
    missing = k - int(mask.sum())
    if missing > 0:  # zero-valued entries make the density exact
        free = (~mask).view(-1).nonzero().view(-1)
        mask.view(-1)[free[torch.randperm(free.numel(), generator=gen)[:missing]]] = True
    if n > m:
        a, mask = a.t(), mask.t()
    return a.reshape(shape).float(), mask.reshape(shape)


@torch.no_grad()
def sparse_init(mask: Tensor, init: str, gen: torch.Generator) -> tuple[Tensor, Tensor] | None:
    """New ``(weight, mask)`` for a trainable tensor under ``mask`` (see
    :data:`SPARSE_INITS`; ``None`` for ``default``): ``gradient-flow`` keeps the
    mask, ``eoi`` replaces it by the support of its matrix, with the same
    number of entries. Float32 CPU tensors; the weight is zero off the mask."""
    check_choice("sparse weight init", init, SPARSE_INITS)
    mask = mask.cpu()
    if init == "default":
        return None
    if init == "gradient-flow":
        rows = mask.reshape(mask.shape[0], -1)
        fan = rows.sum(1, keepdim=True).clamp(min=1).to(torch.float32)
        w = torch.randn(rows.shape, generator=gen) * torch.sqrt(2.0 / fan)
        return (w * rows).reshape(mask.shape), mask
    a, eoi_mask = eoi_matrix(mask.shape, int(mask.sum()) / mask.numel(), gen)
    return RELU_GAIN * a, eoi_mask


def _direct(t: Tensor) -> bool:
    return t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous()


@torch.no_grad()
def init_weights_(tensors: Sequence[Tensor], init: str, seed: int, sparsity: float = 0.0) -> None:
    """Overwrite ``tensors`` in place, in order, from ``generator(seed)``."""
    check_choice("weight init", init, WEIGHT_INITS)
    gen = generator(seed)
    for t in tensors:
        if _direct(t):
            draw(init, t.shape, gen, sparsity, out=t)
        else:
            t.copy_(draw(init, t.shape, gen, sparsity))


@torch.no_grad()
def init_scores(tensors: Sequence[Tensor], init: str, seed: int) -> list[Tensor]:
    """New score tensors shaped, typed and placed like ``tensors``."""
    check_choice("score init", init, SCORE_INITS)
    gen = generator(seed, stream=1)
    return [
        draw(init, t.shape, gen) if _direct(t) else
        draw(init, t.shape, gen).to(device=t.device, dtype=t.dtype)
        for t in tensors
    ]
