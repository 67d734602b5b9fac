"""Inference cost: MACs equal to hand counts, kept weights and kept edges
only, storage bytes of dense, ticket and sparse-trained models."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric.nn.models import GCN

from gnnmask.data import load_dataset
from gnnmask.masks import get_mask_group, mask_model, sparsify
from gnnmask.metrics.cost import count_macs, model_bytes
from gnnmask.models import build_model
from gnnmask.train import RunConfig, train

N, F, H, C = 300, 16, 8, 3


@pytest.fixture(scope="module")
def data():
    return load_dataset("csbm", nodes=N, classes=C, features=F, seed=0)


def test_gcn_macs_are_the_hand_count(data):
    E = data.edge_index.size(1)
    nnz = E + N  # the normalised adjacency has a self-loop per node
    model = build_model("gcn", F, H, C, 2)
    cost = count_macs(model, data.x, data.edge_index)
    assert cost["transform_macs"] == N * F * H + N * H * C
    # one degree pass over the adjacency, then A_hat (h W) in each layer
    assert cost["propagation_macs"] == nnz + nnz * H + nnz * C
    assert cost["inference_macs"] == cost["transform_macs"] + cost["propagation_macs"]
    assert cost["dense_macs"] == cost["inference_macs"]  # nothing masked
    assert sum(v["transform"] for v in cost["per_module"].values()) == cost["transform_macs"]


def test_message_passing_over_edge_index_counts_one_mac_per_scattered_entry(data):
    E = data.edge_index.size(1)
    model = build_model("sage", F, H, C, 2)  # mean aggregation: values and counts
    cost = count_macs(model, data.x, data.edge_index)
    assert cost["propagation_macs"] == (E * F + E) + (E * H + E)
    assert cost["transform_macs"] == 2 * (N * F * H + N * H * C)  # lin_l and lin_r


def test_only_kept_weights_count_and_the_dense_count_is_kept(data):
    model = mask_model(build_model("gcn", F, H, C, 2, bias=False), sparsity=0.75, seed=0)
    cost = count_macs(model, data.x, data.edge_index)
    kept = sum(int(m.sum()) for m in get_mask_group(model).masks().values())
    assert kept == round(0.25 * (F * H + H * C))
    assert cost["transform_macs"] == N * kept
    assert cost["dense_transform_macs"] == N * (F * H + H * C)
    assert cost["propagation_macs"] == cost["dense_propagation_macs"]


def test_sparse_features_count_their_non_zeros_against_the_kept_weights():
    torch.manual_seed(0)
    x = (torch.rand(50, 40) < 0.05).float()
    lin = nn.Linear(40, 6, bias=False)
    with torch.no_grad():
        lin.weight[:, ::2] = 0.0  # half of the input features have no kept weight
    model = nn.Sequential(lin)
    dense = count_macs(model, x)
    assert dense["transform_macs"] == 50 * int((lin.weight != 0).sum())
    csr = x.to_sparse_csr()
    cost = count_macs(SparseTimesWeight(lin), csr, num_nodes=50)
    per_column = (x != 0).sum(0)
    kept_per_column = (lin.weight != 0).sum(0)
    assert cost["transform_macs"] == int((per_column * kept_per_column).sum())
    assert cost["dense_transform_macs"] == int(per_column.sum()) * 6


class SparseTimesWeight(nn.Module):
    """``x @ W^T`` for a sparse ``x`` (as gnnmask's GCN layers consume bag-of-words
    features)."""

    def __init__(self, lin):
        super().__init__()
        self.lin = lin

    def forward(self, x):
        return x @ self.lin.weight.t()


def test_any_pyg_model_is_counted_and_sgcs_cache_is_not_free(data):
    model = GCN(F, H, num_layers=2, out_channels=C)
    assert count_macs(model, data.x, data.edge_index)["transform_macs"] == \
        N * F * H + N * H * C
    sgc = build_model("sgc", F, H, C, 3)
    first = count_macs(sgc, data.x, data.edge_index)
    assert count_macs(sgc, data.x, data.edge_index) == first  # propagated anew each time
    assert first["propagation_macs"] > 3 * data.edge_index.size(1) * F


def test_model_bytes_of_dense_ticket_and_sparse_trained_models():
    weights = F * H + H * C
    dense = build_model("gcn", F, H, C, 2, bias=False)
    assert model_bytes(dense) == {"model_bytes": 4 * weights, "dense_model_bytes": 4 * weights}
    ticket = mask_model(build_model("gcn", F, H, C, 2, bias=False), sparsity=0.9, seed=0)
    bits = -(-F * H // 8) + -(-H * C // 8)
    assert model_bytes(ticket, trained=False) == {"model_bytes": bits,
                                                  "dense_model_bytes": 4 * weights}
    trained = sparsify(build_model("gcn", F, H, C, 2), sparsity=0.9, distribution="uniform",
                       seed=0)
    kept = sum(int(m.sum()) for m in get_mask_group(trained).masks().values())
    biases = H + C
    assert model_bytes(trained)["model_bytes"] == bits + 4 * kept + 4 * biases


def test_every_record_holds_its_inference_cost_and_graph_pruning_counts(data):
    base = dict(dataset="csbm", layers=2, hidden=H, epochs=3, device="cpu")
    dense = train(RunConfig(**base), data=data)
    ugs = train(RunConfig(**base, method="ugs", sparsity=0.5, edge_sparsity=0.3), data=data)
    for r in (dense, ugs):
        assert r["inference_macs"] == r["transform_macs"] + r["propagation_macs"]
        assert r["dense_macs"] == dense["inference_macs"]
        assert r["model_bytes"] > 0 and r["dense_model_bytes"] == dense["dense_model_bytes"]
    assert ugs["propagation_macs"] < dense["propagation_macs"]  # pruned edges are not run
    assert ugs["transform_macs"] < dense["transform_macs"]
