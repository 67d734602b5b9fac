"""SGC (Wu, Souza, Zhang, Fifty, Yu, Weinberger, "Simplifying Graph
Convolutional Networks", ICML 2019)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import SGConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from gnnmask.models.deep import DeepGNN


def _key(*tensors: Tensor) -> tuple:
    """Identity of tensors' contents: storage, shape and in-place version."""
    return tuple((t.data_ptr(), tuple(t.shape), t._version) for t in tensors)


class SGC(DeepGNN):
    r"""Simplified graph convolution (Wu et al. 2019): ``layers`` propagation
    steps, then one linear layer.

    The logits are :math:`S^K X W` with
    :math:`S = \tilde D^{-1/2}(A+I)\tilde D^{-1/2}` and ``K = layers``
    (PyG's :class:`~torch_geometric.nn.conv.SGConv`). As in the paper,
    :math:`S^K X` is computed once and reused while the same features and
    graph come in (a new graph, e.g. DropEdge or a perturbed copy, is
    propagated afresh); it carries no gradient.

    Linear in the features: no activation, no dropout, no hidden state (its
    only trainable tensor is ``W``), so it reads ``bias`` only."""

    name = "sgc"
    reads = ("bias",)

    def build_layers(self, in_dim, hidden, out_dim, layers, options) -> int:
        self.convs = nn.ModuleList([SGConv(in_dim, out_dim, K=layers, bias=options["bias"])])
        self._cache: tuple | None = None
        return 0

    def propagated(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """:math:`S^K x`, from the cache when ``x`` and ``edge_index`` are the
        ones it was computed for."""
        key = _key(x, edge_index)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        conv = self.convs[0]
        with torch.no_grad():
            ei, w = gcn_norm(edge_index, None, x.size(0), dtype=x.dtype)
            h = x
            for _ in range(conv.K):
                h = conv.propagate(ei, x=h, edge_weight=w)
        self._cache = (key, h)
        return h

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None,
                return_hidden: bool = False):
        """As :meth:`DeepGNN.forward`; ``hidden`` holds ``x`` only (the
        propagation steps have no parameters and are not traced)."""
        self.graph(x, edge_index, edge_weight)  # refuses edge weights
        out = self.logits(self.convs[0].lin(self.propagated(x, edge_index)))
        return (out, [x]) if return_hidden else out
