"""Beyond one full batch on one CPU: mini-batches, mixed precision, determinism, torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from gnnmask.data import load_dataset
from gnnmask.data.sampling import neighbor_loader
from gnnmask.errors import UserError
from gnnmask.train import RunConfig, resolve_config, train
from gnnmask.train.engine import deterministic

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def csbm():
    return load_dataset("csbm", nodes=300, classes=3, features=12, seed=0)


def small(**kw):
    base = dict(dataset="csbm", layers=2, hidden=16, epochs=15, device="cpu",
                layer_metrics="none")
    return RunConfig(**{**base, **kw})


def test_neighbour_sampling_draws_real_edges_seeds_first():
    g = torch.Generator().manual_seed(0)
    ei = to_undirected(torch.randint(0, 60, (2, 300), generator=g), num_nodes=60)
    data = Data(x=torch.randn(60, 4), edge_index=ei, y=torch.zeros(60, dtype=torch.long))
    seen = []
    for batch in neighbor_loader(data, torch.arange(30), [3, 2], batch_size=8, seed=1):
        seen += batch.n_id[: batch.batch_size].tolist()
        edges = set(map(tuple, ei.t().tolist()))
        assert all(tuple(e) in edges for e in batch.n_id[batch.edge_index].t().tolist())
        indeg = torch.bincount(batch.edge_index[1], minlength=batch.num_nodes)
        assert int(indeg[: batch.batch_size].max()) <= 3
        assert len(set(batch.n_id.tolist())) == batch.num_nodes
    assert sorted(seen) == list(range(30))  # every training node once per epoch


def test_neighbour_sampling_deeper_than_the_graph_reaches():
    """More hops than the component's diameter: once every reachable node is
    sampled the frontier is empty and the remaining hops add nothing."""
    ei = to_undirected(torch.tensor([[0, 1, 3], [1, 2, 4]]), num_nodes=5)  # 0-1-2, 3-4
    data = Data(x=torch.randn(5, 2), edge_index=ei, y=torch.zeros(5, dtype=torch.long))
    (batch,) = neighbor_loader(data, torch.tensor([0]), [5] * 6, batch_size=1, seed=0)
    assert sorted(batch.n_id.tolist()) == [0, 1, 2]
    # every edge of the component, each drawn once by the node it points to
    assert sorted(map(tuple, batch.n_id[batch.edge_index].t().tolist())) == [
        (0, 1), (1, 0), (1, 2), (2, 1)]


@pytest.mark.parametrize("method", ["dense", "ugt", "rigl", "imp"])
def test_mini_batch_training_learns(csbm, method):
    full = train(small(method=method, epochs=15), data=csbm)
    mini = train(small(method=method, epochs=15, batch_size=20, num_neighbors="5"), data=csbm)
    assert mini["test_acc"] > 0.5  # three classes: chance is 1/3
    assert abs(mini["test_acc"] - full["test_acc"]) < 0.25
    with pytest.raises(UserError, match="full-batch training in one process"):
        resolve_config(small(method="ugs", batch_size=20))


def test_rigl_counts_optimiser_steps_in_mini_batches(csbm):
    rec = train(small(method="rigl", epochs=4, batch_size=12,
                      extra={"update_interval": 3, "update_end": 1.0}), data=csbm)
    steps_per_epoch = -(-60 // 12)  # 20 training nodes per class, 3 classes
    assert [u["step"] for u in rec["method"]["updates"]] == list(
        range(3, 4 * steps_per_epoch, 3))


@pytest.mark.parametrize("amp,model,batch", [
    ("bf16", "gcn", 0), ("fp16", "gcn", 0), ("bf16", "gcnii", 0), ("fp16", "appnp", 0),
    ("bf16", "gcnii", 20)])
def test_mixed_precision_trains_every_propagation(csbm, amp, model, batch):
    # sparse propagation (gcnii, appnp) runs in float32 also under CPU autocast
    rec = train(small(method="ugt", amp=amp, model=model, batch_size=batch), data=csbm)
    full = train(small(method="ugt", model=model, batch_size=batch), data=csbm)
    losses = [r["loss"] for r in rec["history"]]
    assert losses != [r["loss"] for r in full["history"]]  # autocast was on
    assert all(torch.isfinite(torch.tensor(losses)))
    assert rec["history"][-1]["loss"] < rec["history"][0]["loss"]


def test_deterministic_runs_repeat_and_name_the_op_they_cannot_run():
    data = load_dataset("csbm", nodes=300, classes=3, features=12, seed=0)
    a = train(small(method="ugt", deterministic=True, dropout=0.3), data=data)
    b = train(small(method="ugt", deterministic=True, dropout=0.3), data=data)
    strip = lambda h: [{k: v for k, v in r.items() if k != "step_s"} for r in h]  # noqa: E731
    assert strip(a["history"]) == strip(b["history"])
    assert not torch.are_deterministic_algorithms_enabled()  # restored afterwards
    with pytest.raises(UserError, match="--deterministic: scatter_reduce_cuda has no "
                                        "deterministic implementation"):
        with deterministic(True, torch.device("cuda")):
            raise RuntimeError("scatter_reduce_cuda does not have a deterministic "
                               "implementation, but you set 'use_deterministic_algorithms'")


def test_two_process_gloo_run_keeps_identical_masks(tmp_path):
    out = tmp_path / "ddp"
    args = ["train", "--method", "ugt", "--epochs", "12", "--hidden", "16", "--device", "cpu",
            "--layer-metrics", "none", "--log-every", "0", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node",
                           "2", "--master-port", "29533", "-m", "gnnmask", *args,
                           "--distributed", "--check-masks", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "seed_0.json").read_text())
    assert record["world_size"] == 2
    sums = [row["mask_checksums"] for row in record["history"]]
    assert len(sums) == 12 and all(len(s) == 2 and s[0] == s[1] for s in sums)
    assert len({tuple(s) for s in sums}) > 1  # the masks moved, identically on both ranks
    assert not (out / "rank1").exists() and sorted(p.name for p in out.iterdir()) == [
        "config.json", "seed_0.json", "summary.json"]
    single = train(RunConfig(method="ugt", epochs=12, hidden=16, device="cpu",
                             layer_metrics="none"))
    assert abs(single["test_acc"] - record["test_acc"]) < 0.03
