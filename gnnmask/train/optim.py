"""Optimisers and learning-rate schedules, by name (the one registry of each).

``amsgrad`` is Adam with the AMSGrad correction (Reddi et al., ICLR 2018),
which divides by the running maximum of the second-moment estimate, so steps
cannot grow when gradients shrink late in training. ``cosine`` anneals the
learning rate from ``lr`` to 0 over the run (Loshchilov & Hutter, ICLR 2017,
without restarts).
"""

from __future__ import annotations

import torch

from gnnmask.registry import Registry


def amsgrad(params, **kwargs) -> torch.optim.Adam:
    """Adam with AMSGrad's running maximum of the squared gradients (Reddi et
    al. 2018)."""
    return torch.optim.Adam(params, amsgrad=True, **kwargs)


OPTIMIZERS = Registry("--optimizer", {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "amsgrad": amsgrad,
    "sgd": torch.optim.SGD,
})
LR_SCHEDULES = Registry("--lr-schedule", {
    "constant": "The learning rate stays at --lr.",
    "cosine": "Cosine annealing from --lr to 0 over the epochs (Loshchilov & Hutter 2017).",
})


def make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """Optimiser ``name`` over ``params``, PyTorch's fused implementation
    (one pass per tensor) where it exists for these tensors, else the
    default one. The two agree up to float rounding; on CPU the fused one is
    several times faster over the millions of scores of a deep ticket."""
    cls = OPTIMIZERS[name]
    params = list(params)
    try:
        return cls(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for these tensors
        return cls(params, lr=lr, weight_decay=weight_decay)


def make_lr_scheduler(name: str, optimizer, epochs: int):
    """The learning-rate scheduler for ``name`` (``None`` for ``constant``)."""
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return None
