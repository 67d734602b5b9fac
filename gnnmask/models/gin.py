"""GIN (Xu et al., "How Powerful are Graph Neural Networks?", ICLR 2019) as
a deep stack."""

from __future__ import annotations

from torch import nn
from torch_geometric.nn import GINConv

from gnnmask.models.deep import DeepGNN

#: ``--aggr`` values and the PyG aggregation each one names.
AGGREGATIONS = {"sum": "add", "mean": "mean", "max": "max"}


class GIN(DeepGNN):
    """Graph isomorphism network (Xu et al. 2019): ``layers``
    :class:`~torch_geometric.nn.conv.GINConv` layers, each a two-layer MLP
    (linear, ReLU, linear) of ``(1 + eps) h_i + AGG_j h_j`` with ``eps = 0``.

    Every MLP is ``hidden`` units wide inside, as in the GIN paper, the last
    one too: ``hidden -> hidden -> classes``. PyG's ``GIN`` model narrows the
    last MLP to the class count (``hidden -> classes -> classes``), which puts
    a ReLU over as many units as classes just before the logits: one step
    that drives those few units negative on every node makes the output
    constant, the loss stays at ``ln C`` with no gradient, and an untrained
    ticket finds that step within a few epochs (docs/RESULTS.md, "GAT and
    GIN tickets at 2 and 16 layers").

    ``aggr`` is the neighbourhood aggregation: ``sum``, GIN's (the injective
    one of the paper), or ``mean`` / ``max``. The untrained-tickets code (Huang
    et al. 2022) aggregates with the mean; its GIN differs further from this
    one in that each layer applies one linear layer instead of a two-layer
    MLP and its output averages a linear read-out of the last hidden state
    with the last layer's output. Without normalisation the hidden states of
    a deep stack grow layer after layer (``h + AGG h`` doubles them even with
    the mean), so deep GIN needs ``--norm``."""

    name = "gin"
    reads = (*DeepGNN.reads, "aggr")
    choices = {"aggr": tuple(AGGREGATIONS)}

    def init_conv(self, in_dim: int, out_dim: int, *, last: bool, options: dict) -> nn.Module:
        width, bias = self.config["hidden"], options["bias"]
        return GINConv(nn.Sequential(nn.Linear(in_dim, width, bias=bias), nn.ReLU(),
                                     nn.Linear(width, out_dim, bias=bias)),
                       aggr=AGGREGATIONS[options["aggr"]])
