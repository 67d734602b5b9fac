"""GCNII (Chen et al., "Simple and Deep Graph Convolutional Networks", ICML
2020)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.nn import GCN2Conv

from gnnmask.models.deep import Adjacency, AdjDtype, DeepGNN, dropout, propagate

#: Initialisations of the GCN2Conv weights (``conv_init``): ``glorot``, PyG's;
#: ``uniform``, U(-b, b) with b = 1 / sqrt(channels), the GCNII code's.
CONV_INITS = ("glorot", "uniform")


class GCNIILayer(AdjDtype, GCN2Conv):
    """PyG's :class:`~torch_geometric.nn.conv.GCN2Conv` (Chen et al. 2020)
    with the sparse product in the adjacency's dtype under autocast, that
    also accepts an :class:`~gnnmask.models.deep.Adjacency`:

    .. math::
        h' = (1 - \\beta)\\,p + \\beta\\,p\\,W, \\qquad
        p = (1 - \\alpha)\\,\\hat A h + \\alpha\\,h^{(0)}

    (shared weights), in ``GCN2Conv``'s order of operations, with the backward
    pass through the precomputed transpose. Any other graph input takes
    ``GCN2Conv``'s own path, and so do separate weights (``shared_weights=False``,
    on the CSR matrix ``adj_t``); parameters and ``state_dict`` keys are its
    own. An :class:`~gnnmask.models.deep.Adjacency` is already normalised:
    build the layer with ``normalize=False``.

    ``conv_init`` (:data:`CONV_INITS`) draws the weights as PyG does
    (``glorot``: U(-b, b), b = sqrt(6 / (2 c)) for ``c`` channels) or as the
    GCNII code does (``uniform``: b = 1 / sqrt(c), about 0.58 times Glorot's
    bound)."""

    def __init__(self, *args, conv_init: str = "glorot", **kwargs):
        self.conv_init = conv_init  # read by reset_parameters, which GCN2Conv's __init__ calls
        super().__init__(*args, **kwargs)

    def reset_parameters(self):
        super().reset_parameters()
        if self.conv_init == "uniform":
            for weight in (self.weight1, self.weight2):
                if weight is not None:
                    bound = 1.0 / math.sqrt(weight.size(1))
                    nn.init.uniform_(weight, -bound, bound)

    def forward(self, x: Tensor, x_0: Tensor, edge_index, edge_weight: Tensor | None = None):
        if not isinstance(edge_index, Adjacency):
            return super().forward(x, x_0, edge_index, edge_weight)
        if self.weight2 is not None:  # separate weights: GCN2Conv's path on the CSR matrix
            return super().forward(x, x_0, edge_index.adj_t, edge_weight)
        p = propagate(x, edge_index).mul_(1 - self.alpha)
        p = p.add_(self.alpha * x_0[:p.size(0)])
        return torch.addmm(p, p, self.weight1, beta=1.0 - self.beta, alpha=self.beta)


class GCNII(DeepGNN):
    """GCNII (Chen et al. 2020): a linear input layer, ``layers`` GCN2Conv
    layers with initial residual ``alpha`` and identity mapping of strength
    ``theta / l``, and a linear output layer.

    Its initial residual is part of every layer, so ``residual`` may only add a
    plain skip (``none`` or ``plain``). ``conv_init`` draws the GCN2Conv
    weights by PyG's Glorot rule (``glorot``, the default) or as the GCNII
    code does (``uniform``, :class:`GCNIILayer`); the linear layers keep
    torch's default either way, as in that code. Only methods that keep the
    model's initialisation read it (the run configuration refuses it with a
    ``--weight-init`` that re-draws the weights)."""

    name = "gcnii"
    reads = ("dropout", "activation", "bias", "norm", "residual", "alpha", "theta",
             "conv_init")
    residuals = ("none", "plain")
    always_reads = ("alpha", "theta")
    choices = {"conv_init": CONV_INITS}
    graph_input = "gcn"
    conv_decay = True  # the paper's code: 0.01 on the convolutions, 5e-4 on the rest

    def build_layers(self, in_dim, hidden, out_dim, layers, options) -> int:
        self.lin_in = nn.Linear(in_dim, hidden, bias=options["bias"])
        self.lin_out = nn.Linear(hidden, out_dim, bias=options["bias"])
        self.convs = nn.ModuleList(
            GCNIILayer(hidden, options["alpha"], options["theta"], layer=i + 1,
                       normalize=False, conv_init=options["conv_init"])
            for i in range(layers))
        return layers

    def export_steps(self, ex) -> None:
        """``x0 = act(lin_in(x))``; each layer ``x' = (1 - alpha) A h + alpha
        x0``, ``(1 - beta_l) x' + beta_l x' W_l``, norm, activation and plain
        residual; then ``lin_out``."""
        ex.linear("x", "h", self.lin_in.weight, self.lin_in.bias)
        ex.act(self.act, "h", "h")
        ex.step("copy", "h", "x0")
        h = "h"
        for i, conv in enumerate(self.convs):
            if conv.weight2 is not None:
                raise NotImplementedError  # gnnmask's GCNII shares its weights
            p, w, z = f"p{i}", f"w{i}", f"z{i}"
            ex.step("propagate", h, p)
            ex.step("axpby", p, p, a=1.0 - conv.alpha, b=conv.alpha, other="x0")
            ex.linear(p, w, conv.weight1.t())
            ex.step("axpby", p, z, a=1.0 - conv.beta, b=conv.beta, other=w)
            ex.norm(self.norms[i], z, z)
            ex.act(self.act, z, z)
            if self.residual == "plain":
                ex.step("axpby", z, z, a=1.0, b=1.0, other=h)
            h = z
        ex.linear(h, "out", self.lin_out.weight, self.lin_out.bias)

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None,
                return_hidden: bool = False):
        """As :meth:`DeepGNN.forward`; ``hidden`` holds ``x`` and the state
        after each GCN2Conv layer."""
        graph = self.graph(x, edge_index, edge_weight)
        hidden = [x]
        h = x0 = self.act(self.lin_in(dropout(x, self.dropout, self.training)))
        for i, conv in enumerate(self.convs):
            z = conv(dropout(h, self.dropout, self.training), x0, *graph)
            h = self.hidden[i](self.mix(self.act(self.norms[i](z)), h, None, i))
            if return_hidden:  # else every layer's state would stay alive to the end
                hidden.append(h)
        out = self.logits(self.lin_out(dropout(h, self.dropout, self.training)))
        return (out, hidden) if return_hidden else out
