"""Deep GNN backbones built from PyTorch Geometric layers (masks attach from outside).

Each backbone is one :class:`~gnnmask.models.deep.DeepGNN` subclass in one
module of this package; defining it registers it in :data:`MODELS`.
"""

import importlib
import pkgutil

from gnnmask.models.deep import (
    ACTIVATIONS,
    MODELS,
    NORMS,
    OPTIONS,
    RESIDUALS,
    DeepGNN,
    build_model,
    get_model_class,
)

# Every module of this package defines backbones: importing them registers them.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["ACTIVATIONS", "MODELS", "NORMS", "OPTIONS", "RESIDUALS", "DeepGNN",
           "build_model", "get_model_class"]
