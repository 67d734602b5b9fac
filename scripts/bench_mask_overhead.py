"""Cost of mask-only training against dense training and a matrix-multiply bound.

On a 32-layer, 448-wide GCN on Cora (no bias, no dropout), measures in one
process the median seconds per training step of ``ugt`` and of ``dense`` (the
engine's own step timing), and the step time a pure matrix-multiply bound
would give: the step's GEMM FLOPs divided by the ``torch.matmul`` throughput
measured here on a 2708x448 by 448x448 product. Prints one JSON object.

The process tunes glibc's allocator as the ``gnnmask`` command does
(:mod:`gnnmask.train.runtime`; ``GNNMASK_MALLOC_TUNING=0`` to compare). Runs
alternate (dense, ugt, dense, ugt, ...) for ``--rounds`` rounds so that
drift in the machine's speed hits both methods alike; the first two steps of
each run are dropped as warm-up.

    python scripts/bench_mask_overhead.py [--epochs 12] [--rounds 3] [--data-root DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from gnnmask.data import load_dataset
from gnnmask.train import RunConfig, train
from gnnmask.train.runtime import tune_cpu_allocator


def matmul_gflops(n: int, d: int, repeats: int = 30) -> float:
    a, b = torch.randn(n, d), torch.randn(d, d)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n * d * d / statistics.median(times) / 1e9


def step_gflop(n: int, dims: list[int]) -> float:
    """GEMM GFLOP of one training step: forward X W per layer, backward
    dL/dW per layer and dL/dX for every layer but the first."""
    fwd = [2 * n * i * o for i, o in zip(dims[:-1], dims[1:])]
    return (sum(fwd) * 3 - fwd[0]) / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--hidden", type=int, default=448)
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    tuned = tune_cpu_allocator()  # as the gnnmask command line does
    data = load_dataset("cora", root=args.data_root)
    common = dict(dataset="cora", model="gcn", layers=args.layers, hidden=args.hidden,
                  epochs=args.epochs, dropout=0.0, bias=False, device=args.device)
    steps = {}
    for method in ("dense", "ugt") * args.rounds:  # interleaved against drift
        rec = train(RunConfig(method=method, **common), data=data)
        steps.setdefault(method, []).extend(r["step_s"] for r in rec["history"][2:])
    dense = statistics.median(steps["dense"])
    ugt = statistics.median(steps["ugt"])
    dims = [data.num_features] + [args.hidden] * (args.layers - 1) + [data.num_classes]
    gflops = matmul_gflops(data.num_nodes, args.hidden)
    bound = step_gflop(data.num_nodes, dims) / gflops
    print(json.dumps({
        "model": f"gcn L{args.layers} h{args.hidden}", "dataset": "cora",
        "threads": torch.get_num_threads(), "epochs_each": args.epochs,
        "rounds": args.rounds, "malloc_tuned": tuned,
        "dense_step_s": round(dense, 4), "ugt_step_s": round(ugt, 4),
        "matmul_gflops": round(gflops, 1), "bound_step_s": round(bound, 4),
        "ugt_over_dense": round(ugt / dense, 3), "ugt_over_bound": round(ugt / bound, 3),
    }))


if __name__ == "__main__":
    main()
