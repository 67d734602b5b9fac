"""Deep GNN models built from PyTorch Geometric layers (masks attach from outside)."""

from gnnmask.models.deep import ACTIVATIONS, MODELS, NORMS, RESIDUALS, DeepGNN, build_model

__all__ = ["ACTIVATIONS", "MODELS", "NORMS", "RESIDUALS", "DeepGNN", "build_model"]
