"""Run a model exported by ``gnnmask export`` with PyTorch alone.

This file imports nothing but ``torch``: copy it next to an exported file and
run::

    from runtime import load
    model = load("cora-ticket.gnn")     # a torch.nn.Module
    logits = model(x)                   # x: [num_nodes, in_features], the graph is inside

An exported file is a ``torch.save`` of plain data (loaded with
``weights_only=True``): the graph as a normalised CSR adjacency with the
pruned edges removed, each weight matrix as CSR arrays (values, column
indices, row pointers: only the kept entries) and a short program of steps
over named registers, written by :func:`gnnmask.export.export_model`.

Steps (``op`` and its fields):

``linear``      ``dst = src @ W^T + b`` (``weight``, ``bias`` or ``None``)
``propagate``   ``dst = A src`` with the stored adjacency
``act``         ``dst = f(src)``: ``relu``, ``elu``, ``gelu``, ``leaky_relu``,
                ``tanh``, ``sigmoid``, ``identity``
``layer_norm``  per-node layer normalisation with ``weight``, ``bias``, ``eps``
``pair_norm``   PairNorm: centre over nodes, divide by the root mean squared
                node norm (``eps``), times ``scale``
``affine``      ``dst = src * scale + shift`` (per feature; batch norm in eval)
``axpby``       ``dst = a * src + b * other``
``mul``         ``dst = src * other`` (broadcast: e.g. a score per node)
``copy``        ``dst = src``

The input is register ``x``, the output register ``out``. Weights at most
``sparse_below`` dense (default 0.01) are multiplied as sparse CSR matrices,
the others as dense ones: on the CPUs gnnmask was measured on, a CSR weight
beats a dense one only at about 99% sparsity and wide inputs, and loses on
graphs of many nodes and narrow features (figures in gnnmask's
docs/RESULTS.md); either way the result is the same to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FORMAT = 1
_ACTS = {"relu": F.relu, "elu": F.elu, "gelu": F.gelu, "leaky_relu": F.leaky_relu,
         "tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": lambda x: x}


def _csr(arrays: dict, shape) -> Tensor:
    """A CSR matrix from stored arrays; indices widened to int64, which the CPU
    sparse kernels run several times faster than int32 (files keep int32)."""
    return torch.sparse_csr_tensor(arrays["crow"].long(), arrays["col"].long(),
                                   arrays["values"], size=tuple(shape))


class ExportedGNN(nn.Module):
    """The inference module of an exported file (see the module docstring)."""

    def __init__(self, spec: dict, sparse_below: float = 0.01):
        super().__init__()
        if spec.get("format") != FORMAT:
            raise ValueError(f"exported format {spec.get('format')!r}; this runtime reads "
                             f"format {FORMAT}")
        self.steps = spec["steps"]
        self.num_nodes = spec["num_nodes"]
        self.in_features = spec["in_features"]
        self.adj = _csr(spec["adjacency"], (self.num_nodes, self.num_nodes))
        self.weights: dict[str, Tensor] = {}
        for name, w in spec["weights"].items():
            rows, cols = w["shape"]
            density = w["values"].numel() / max(rows * cols, 1)
            csr = _csr(w, (rows, cols))
            self.weights[name] = csr if density <= sparse_below else csr.to_dense()
        self.tensors: dict[str, Tensor] = dict(spec["tensors"])
        # registers read for the last time at each step are dropped after it, so a
        # deep model holds a few states at a time, not one per layer
        last: dict[str, int] = {}
        for i, s in enumerate(self.steps):
            for reg in (s["src"], s.get("other")):
                if reg is not None:
                    last[reg] = i
        self.free = [[r for r, i in last.items() if i == j and r != "out"]
                     for j in range(len(self.steps))]

    def _linear(self, x: Tensor, step: dict) -> Tensor:
        w = self.weights[step["weight"]]
        y = torch.sparse.mm(w, x.t()).t() if w.layout == torch.sparse_csr else x @ w.t()
        return y if step.get("bias") is None else y + self.tensors[step["bias"]]

    def forward(self, x: Tensor) -> Tensor:
        if x.shape != (self.num_nodes, self.in_features):
            raise ValueError(f"x has shape {tuple(x.shape)}; allowed: ({self.num_nodes}, "
                             f"{self.in_features}), the exported graph's nodes and features")
        regs = {"x": x}
        t = self.tensors
        for s, free in zip(self.steps, self.free):
            op, src = s["op"], regs[s["src"]]
            if op == "linear":
                out = self._linear(src, s)
            elif op == "propagate":
                out = self.adj @ src
            elif op == "act":
                out = _ACTS[s["fn"]](src)
            elif op == "layer_norm":
                out = F.layer_norm(src, src.shape[-1:], t.get(s.get("weight")),
                                   t.get(s.get("bias")), s["eps"])
            elif op == "pair_norm":
                centred = src - src.mean(dim=0, keepdim=True)
                out = s["scale"] * centred / (s["eps"] + centred.pow(2).sum(-1).mean()).sqrt()
            elif op == "affine":
                out = src * t[s["scale"]] + t[s["shift"]]
            elif op == "axpby":
                out = s["a"] * src + s["b"] * regs[s["other"]]
            elif op == "mul":
                out = src * regs[s["other"]]
            elif op == "copy":
                out = src
            else:
                raise ValueError(f"unknown step {op!r}")
            for reg in free:
                regs.pop(reg, None)
            regs[s["dst"]] = out
        return regs["out"]

    def extra_repr(self) -> str:
        return (f"nodes={self.num_nodes}, in_features={self.in_features}, "
                f"steps={len(self.steps)}, edges={self.adj._nnz()}")


def load(path, sparse_below: float = 0.01) -> ExportedGNN:
    """The :class:`ExportedGNN` stored at ``path`` (``weights_only`` loading:
    the file holds data, never code)."""
    return ExportedGNN(torch.load(path, weights_only=True), sparse_below=sparse_below)
