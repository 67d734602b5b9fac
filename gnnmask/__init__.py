"""gnnmask: untrained tickets and sparse training for deep graph neural networks.

The most used entry points are available at the top level::

    gnnmask.mask_model(model, sparsity=0.9, rule="global")   # any PyG model
    gnnmask.sparsify(model, sparsity=0.9, distribution="erk") # trainable sparse weights
    gnnmask.unmask_model(model)                               # plain model with zeros
    gnnmask.save_ticket(path, model); gnnmask.load_ticket(path)
    gnnmask.load_dataset("cora"); gnnmask.build_model("gcn", ...)
    from gnnmask.train import RunConfig, train          # the training engine

They are imported on first access (PEP 562), so ``import gnnmask.metrics``
does not pull in the training engine, and ``import gnnmask`` stays cheap.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: Top-level name -> the sub-package that defines it.
_EXPORTS = {
    "load_dataset": "gnnmask.data",
    "build_model": "gnnmask.models",
    "mask_model": "gnnmask.masks",
    "sparsify": "gnnmask.masks",
    "unmask_model": "gnnmask.masks",
    "save_ticket": "gnnmask.masks",
    "load_ticket": "gnnmask.masks",
    "RunConfig": "gnnmask.train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gnnmask' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
