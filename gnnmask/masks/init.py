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

Scores (:data:`SCORE_INITS`): ``kaiming-uniform``, ``kaiming-normal`` (as
above), ``uniform`` (``U(0, 1)``) and ``constant`` (all 1; note that ties are
then broken by position, see :mod:`gnnmask.masks.select`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from gnnmask.errors import check_choice

WEIGHT_INITS = ("kaiming-uniform", "kaiming-normal", "signed-constant", "scaled-signed-constant")
SCORE_INITS = ("kaiming-uniform", "kaiming-normal", "uniform", "constant")
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
    if init in ("signed-constant", "scaled-signed-constant"):
        if init == "scaled-signed-constant":
            std = RELU_GAIN / math.sqrt(fan_in(shape) * (1.0 - sparsity))
        return t.bernoulli_(0.5, generator=gen).mul_(2 * std).sub_(std)
    if init == "uniform":
        return t.uniform_(0.0, 1.0, generator=gen)
    if init == "constant":
        return t.fill_(1.0)
    raise AssertionError(init)  # names are checked by the callers


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
