"""SGC (Wu, Souza, Zhang, Fifty, Yu, Weinberger, "Simplifying Graph
Convolutional Networks", ICML 2019)."""

from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import SGConv

from gnnmask.models.deep import DeepGNN


class SGC(DeepGNN):
    r"""Simplified graph convolution (Wu et al. 2019): ``layers`` propagation
    steps, then one linear layer.

    The logits are :math:`S^K X W` with
    :math:`S = \tilde D^{-1/2}(A+I)\tilde D^{-1/2}` and ``K = layers``
    (PyG's :class:`~torch_geometric.nn.conv.SGConv`).

    Linear in the features: no activation, no dropout, no hidden state (its
    only trainable tensor is ``W``), so it reads ``bias`` only."""

    name = "sgc"
    reads = ("bias",)

    def build_layers(self, in_dim, hidden, out_dim, layers, options) -> int:
        self.convs = nn.ModuleList([SGConv(in_dim, out_dim, K=layers, bias=options["bias"])])
        return 0

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None,
                return_hidden: bool = False):
        """As :meth:`DeepGNN.forward`; ``hidden`` holds ``x`` only (the
        propagation steps have no parameters and are not traced)."""
        graph = self.graph(x, edge_index, edge_weight)
        out = self.logits(self.convs[0](x, *graph))
        return (out, [x]) if return_hidden else out
