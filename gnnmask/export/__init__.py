"""Export a trained or masked model as a compact inference module that runs
with PyTorch alone (:mod:`gnnmask.export.runtime`, a file that imports only
``torch``).

:func:`export_model` turns a gnnmask backbone (masked or not) and the graph
it runs on into a plain-data spec: each weight matrix stored as CSR arrays of
its kept entries (masked entries removed), the graph as one normalised CSR
adjacency holding only the edges the model is given (edges a graph ticket
pruned are gone), and the backbone's forward pass as a few steps over named
registers, written by the backbone class itself
(:meth:`gnnmask.models.DeepGNN.export_steps`). :func:`save_export` writes it
with ``torch.save``; :func:`gnnmask.export.runtime.load` reads it back with
``weights_only=True`` into an ordinary ``torch.nn.Module`` whose outputs equal
the masked model's (to float rounding) on every node.

Backbones whose class does not write export steps are refused with a
:class:`~gnnmask.errors.UserError` naming the ones that do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn import PairNorm

from gnnmask.atomic import write_atomic
from gnnmask.errors import UserError
from gnnmask.export.runtime import FORMAT, ExportedGNN, load
from gnnmask.models import MODELS
from gnnmask.models.deep import DeepGNN, normalized_adjacency

__all__ = ["Exporter", "exportable_models", "export_model", "load_export", "save_export",
           "stored_bytes"]


def _csr_arrays(csr: Tensor) -> dict[str, Tensor]:
    """A CSR matrix as arrays of their own (``torch.save`` writes whole
    storages, so views are copied), indices as int32 where they fit."""
    small = csr.size(0) < 2**31 and csr.size(1) < 2**31 and csr._nnz() < 2**31
    index = torch.int32 if small else torch.int64
    return {"crow": csr.crow_indices().to(index).clone(),
            "col": csr.col_indices().to(index).clone(), "values": csr.values().clone()}


def exportable_models() -> list[str]:
    """The registered backbones that write export steps."""
    return [name for name, cls in MODELS.items()
            if cls.export_steps is not DeepGNN.export_steps]


class Exporter:
    """What a backbone's :meth:`~gnnmask.models.DeepGNN.export_steps` writes
    into: steps, weights (stored as CSR arrays of their non-zero entries) and
    other tensors, each under a fresh name."""

    def __init__(self):
        self.steps: list[dict[str, Any]] = []
        self.weights: dict[str, dict[str, Any]] = {}
        self.tensors: dict[str, Tensor] = {}

    def step(self, op: str, src: str, dst: str, **fields) -> None:
        self.steps.append({"op": op, "src": src, "dst": dst, **fields})

    def weight(self, w: Tensor) -> str:
        """Store a ``[out, in]`` matrix by its non-zero entries; its key."""
        w = w.detach().float().cpu()
        key = f"w{len(self.weights)}"
        self.weights[key] = {"shape": list(w.shape), **_csr_arrays(w.to_sparse_csr())}
        return key

    def tensor(self, t: Tensor | None) -> str | None:
        if t is None:
            return None
        key = f"t{len(self.tensors)}"
        self.tensors[key] = t.detach().float().cpu().clone()
        return key

    def linear(self, src: str, dst: str, weight: Tensor, bias: Tensor | None = None) -> None:
        """``dst = src @ weight^T + bias``."""
        self.step("linear", src, dst, weight=self.weight(weight), bias=self.tensor(bias))

    def add(self, src: str, dst: str, bias: Tensor | None) -> None:
        """``dst = src + bias`` (a copy when ``bias`` is ``None``)."""
        if bias is None:
            self.step("copy", src, dst)
        else:
            self.step("affine", src, dst, scale=self.tensor(torch.ones_like(bias)),
                      shift=self.tensor(bias))

    def norm(self, module: nn.Module, src: str, dst: str) -> None:
        """A normalisation module in eval mode (identity, layer, pair, batch)."""
        if isinstance(module, nn.Identity):
            self.step("copy", src, dst)
        elif isinstance(module, nn.LayerNorm):
            self.step("layer_norm", src, dst, weight=self.tensor(module.weight),
                      bias=self.tensor(module.bias), eps=float(module.eps))
        elif isinstance(module, PairNorm):
            if module.scale_individually:
                raise UserError("PairNorm(scale_individually=True) cannot be exported; "
                                "allowed: the default PairNorm")
            self.step("pair_norm", src, dst, scale=float(module.scale), eps=float(module.eps))
        elif isinstance(module, nn.BatchNorm1d):
            scale = module.weight / torch.sqrt(module.running_var + module.eps)
            shift = module.bias - module.running_mean * scale
            self.step("affine", src, dst, scale=self.tensor(scale), shift=self.tensor(shift))
        else:
            raise UserError(f"normalisation {type(module).__name__} cannot be exported; "
                            "allowed: none, layer, pair, batch")

    def act(self, module: nn.Module, src: str, dst: str) -> None:
        names = {nn.ReLU: "relu", nn.ELU: "elu", nn.GELU: "gelu", nn.LeakyReLU: "leaky_relu",
                 nn.Tanh: "tanh", nn.Identity: "identity"}
        fn = names.get(type(module))
        if fn is None or (fn == "leaky_relu" and module.negative_slope != 0.01) \
                or (fn == "elu" and module.alpha != 1.0) \
                or (fn == "gelu" and module.approximate != "none"):
            raise UserError(f"activation {module!r} cannot be exported; allowed: the "
                            f"defaults of {', '.join(names.values())}")
        self.step("act", src, dst, fn=fn)


def export_model(model: nn.Module, x: Tensor, edge_index: Tensor,
                 edge_weight: Tensor | None = None) -> dict[str, Any]:
    """The export spec of ``model`` (a gnnmask backbone, masked or not) on
    the graph ``edge_index`` (with ``edge_weight``: e.g. a graph ticket's
    kept edges and their weights) for features of ``x``'s shape.

    The model must be in its final state: ghost skips and branches (ToST)
    off. Raises :class:`~gnnmask.errors.UserError` for a backbone or a part
    that cannot be exported."""
    if not isinstance(model, DeepGNN):
        raise UserError(f"cannot export {type(model).__name__}; allowed: a gnnmask backbone "
                        f"({', '.join(exportable_models())})")
    if type(model).export_steps is DeepGNN.export_steps:
        raise UserError(f"model {model.name!r} cannot be exported; allowed: "
                        f"{', '.join(exportable_models())}")
    if model.ghost_skip or model.ghost_branches is not None:
        raise UserError("a model with ghost skips or branches on cannot be exported; allowed: "
                        "the final model (ghost components off)")
    n = int(x.size(0))
    if edge_weight is not None:
        edge_weight = edge_weight.detach()
        keep = edge_weight != 0  # edges weighted 0 carry nothing: remove them
        edge_index, edge_weight = edge_index[:, keep], edge_weight[keep]
    adj = normalized_adjacency(edge_index.cpu(), n, torch.float32,
                               None if edge_weight is None else edge_weight.float().cpu(),
                               model.config["degree"])
    ex = Exporter()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model.export_steps(ex)
    finally:
        model.train(was_training)
    return {"format": FORMAT, "model": model.name, "num_nodes": n,
            "in_features": int(x.size(1)), "steps": ex.steps, "weights": ex.weights,
            "tensors": ex.tensors,
            "adjacency": _csr_arrays(adj)}


def stored_bytes(spec: dict[str, Any]) -> int:
    """Bytes of the tensors an export holds (weights, other tensors, graph)."""
    def size(t: Tensor) -> int:
        return t.numel() * t.element_size()

    weights = sum(size(w[k]) for w in spec["weights"].values() for k in ("crow", "col", "values"))
    return weights + sum(size(t) for t in spec["tensors"].values()) + \
        sum(size(t) for t in spec["adjacency"].values())


def save_export(spec: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``spec`` to ``path`` (atomically) for
    :func:`gnnmask.export.runtime.load`."""
    return write_atomic(Path(path), lambda p: torch.save(spec, p))


def load_export(path: str | os.PathLike, sparse_below: float = 0.01) -> ExportedGNN:
    """:func:`gnnmask.export.runtime.load`."""
    return load(path, sparse_below=sparse_below)
