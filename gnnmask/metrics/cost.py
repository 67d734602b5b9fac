"""Inference cost: the multiply-accumulates (MACs) of one full-graph forward
pass, and the bytes needed to store a model.

MACs are counted from the operations a forward pass actually runs, seen by a
:class:`~torch.utils._python_dispatch.TorchDispatchMode`, so any PyTorch or
PyTorch Geometric model is counted, masked or not, without a formula per
layer type:

- a dense product :math:`A B` (``mm``, ``addmm``, ``bmm``: ``nn.Linear`` and
  every PyG layer's weights reach these) is a *feature transformation* of
  :math:`\\mathrm{rows}(A)\\,\\mathrm{nnz}(B)` MACs: only the kept (non-zero)
  weights count, as a sparse kernel would run them; the dense model's count
  is :math:`\\mathrm{rows}(A)\\,\\mathrm{numel}(B)`;
- a sparse-matrix product :math:`A B` whose sparse :math:`A` is square of side
  ``num_nodes`` (a CSR adjacency) is *propagation*:
  :math:`\\mathrm{nnz}(A)\\,\\mathrm{cols}(B)`, the kept edges only; any other
  sparse :math:`A` (sparse input features) is a feature transformation of
  :math:`\\sum_j \\mathrm{nnz}(A_{:,j})\\,\\mathrm{nnz}(B_{j,:})` MACs
  (:math:`\\sum_j \\mathrm{nnz}(A_{:,j})\\,\\mathrm{cols}(B)` dense);
- a scatter or index-add (PyG's message passing over ``edge_index``,
  attention softmax, node degrees) is propagation: one MAC per scattered
  element.

Element-wise work (activations, normalisation, attention scores, residual
sums) is :math:`O(N d)` per layer and not counted; this follows the graph
lottery ticket papers, which count the MACs of the feature transformations
and of the aggregation. Graphs pruned by a method (UGS's edge masks) count
through the graph the forward pass is given.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["count_macs", "model_bytes"]

_aten = torch.ops.aten
_DENSE = {_aten.mm.default: (0, 1), _aten.addmm.default: (1, 2), _aten.bmm.default: (0, 1),
          _aten.baddbmm.default: (1, 2)}
_SPARSE = {_aten._sparse_addmm.default: (1, 2)}
_SCATTER = {_aten.scatter_add_.default: 3, _aten.scatter_add.default: 3,
            _aten.scatter_reduce_.two: 3, _aten.scatter_reduce.two: 3,
            _aten.index_add_.default: 3, _aten.index_add.default: 3}
_SPARSE_LAYOUTS = (torch.sparse_csr, torch.sparse_coo, torch.sparse_csc)


def _nnz(t: Tensor) -> int:
    return int(torch.count_nonzero(t))


def _column_nnz(a: Tensor) -> Tensor:
    """Non-zeros per column of a sparse 2-D tensor."""
    if a.layout == torch.sparse_csr:
        cols = a.col_indices()
    else:
        cols = a.coalesce().indices()[1] if a.layout == torch.sparse_coo \
            else a.to_sparse_coo().coalesce().indices()[1]
    return torch.bincount(cols, minlength=a.shape[1])


class _Counter(TorchDispatchMode):
    """Tallies the MACs of matrix products and scatters, by kind and by the
    innermost module running (see :func:`count_macs`)."""

    def __init__(self, num_nodes: int):
        super().__init__()
        self.num_nodes = num_nodes
        self.stack: list[str] = [""]
        self.kept: dict[str, dict[str, int]] = defaultdict(lambda: {"transform": 0,
                                                                    "propagation": 0})
        self.dense: dict[str, int] = {"transform": 0, "propagation": 0}

    def _add(self, kind: str, kept: int, dense: int) -> None:
        self.kept[self.stack[-1]][kind] += kept
        self.dense[kind] += dense

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in _DENSE:
            i, j = _DENSE[func]
            a, b = args[i], args[j]
            if a.layout in _SPARSE_LAYOUTS:
                self._sparse(a, b)
            else:
                rows = math.prod(a.shape[:-1])  # batch x rows for bmm
                per_batch = b.shape[0] if b.dim() == 3 else 1
                self._add("transform", rows * _nnz(b) // per_batch, rows * b[0].numel()
                          if b.dim() == 3 else rows * b.numel())
        elif func in _SPARSE:
            i, j = _SPARSE[func]
            self._sparse(args[i], args[j])
        elif func in _SCATTER:
            src = args[_SCATTER[func]]
            if isinstance(src, Tensor):
                self._add("propagation", src.numel(), src.numel())
        return out

    def _sparse(self, a: Tensor, b: Tensor) -> None:
        if a.shape[0] == a.shape[1] == self.num_nodes:  # an adjacency: propagation
            n = a._nnz() * b.shape[-1]
            self._add("propagation", n, n)
            return
        col = _column_nnz(a).to(b.device)  # sparse features times a weight
        rows = (b != 0).sum(dim=-1)
        self._add("transform", int((col * rows).sum()), int(col.sum()) * b.shape[-1])


def count_macs(model: nn.Module, *inputs: Any, num_nodes: int | None = None,
               **kwargs: Any) -> dict[str, Any]:
    """The MACs of ``model(*inputs, **kwargs)`` (one forward pass, in eval
    mode, without gradients; the model's mode is restored).

    ``num_nodes`` (default: the first input's first dimension) tells an
    adjacency from a sparse feature matrix. Returns ``{"transform_macs",
    "propagation_macs", "inference_macs"}`` (kept weights and the edges the
    pass is given), their ``dense_*`` counterparts (every weight counted) and
    ``per_module``: ``{module name: {"transform": MACs, "propagation":
    MACs}}`` by the innermost module that ran each operation (``""``: the
    model's own code).

    Feature tensors are cloned first, so a model that caches work per input
    tensor (SGC's propagated features) counts it as on a new graph.
    """
    if num_nodes is None:
        num_nodes = int(inputs[0].shape[0])
    inputs = tuple(x.clone() if isinstance(x, Tensor) and x.is_floating_point() else x
                   for x in inputs)
    counter = _Counter(num_nodes)
    def enter(name):
        def hook(module, args):
            counter.stack.append(name)
        return hook

    def leave(module, args, output):
        counter.stack.pop()

    handles = []
    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_pre_hook(enter(name)))
            handles.append(module.register_forward_hook(leave, always_call=True))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), counter:
            model(*inputs, **kwargs)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    transform = sum(v["transform"] for v in counter.kept.values())
    propagation = sum(v["propagation"] for v in counter.kept.values())
    return {"transform_macs": transform, "propagation_macs": propagation,
            "inference_macs": transform + propagation,
            "dense_transform_macs": counter.dense["transform"],
            "dense_propagation_macs": counter.dense["propagation"],
            "dense_macs": counter.dense["transform"] + counter.dense["propagation"],
            "per_module": {k: dict(v) for k, v in counter.kept.items()
                           if v["transform"] or v["propagation"]}}


def model_bytes(model: nn.Module, trained: bool = True, *, bits: int = 32) -> dict[str, int]:
    """Bytes to store ``model`` for inference, and its dense size.

    Each parameter of ``bits``-bit values counts ``bits / 8`` bytes per entry,
    except masked tensors (a ``torch.nn.utils.parametrize`` parametrization
    holding a boolean ``mask`` buffer, as :func:`gnnmask.masks.mask_model` and
    :func:`~gnnmask.masks.sparsify` attach), stored as one bit per entry (the
    packed mask) plus, when ``trained`` (the weights were updated), the
    values of the kept entries only. With ``trained=False`` (an untrained
    ticket) the weights and every unmasked parameter come back from the seed
    that drew them, so only the packed masks count. Scores are training
    state and never count. Returns ``{"model_bytes", "dense_model_bytes"}``.
    """
    value = bits // 8
    masks = {}
    for module in model.modules():
        plist = getattr(module, "parametrizations", None)
        if plist is None:
            continue
        for p in plist.values():
            for q in p:
                mask = getattr(q, "mask", None)
                if isinstance(mask, Tensor) and mask.dtype == torch.bool:
                    masks[id(p.original)] = mask
    stored = dense = 0
    for name, param in model.named_parameters():
        if name.endswith(".scores"):
            continue
        dense += param.numel() * value
        mask = masks.get(id(param))
        if mask is not None:
            stored += -(-mask.numel() // 8) + (_nnz(mask) * value if trained else 0)
        elif trained:
            stored += param.numel() * value
    return {"model_bytes": stored, "dense_model_bytes": dense}
