"""Cost of mask-only training against dense training and a matrix-multiply bound.

On a 32-layer, 448-wide GCN on Cora (no bias, no dropout), measures in one
process the median seconds per training step of ``ugt`` and of ``dense``
(the engine's own step, :func:`gnnmask.train.engine.training_step`, with the
method's per-epoch hook before it, as in :func:`gnnmask.train.train`), and the
step time a pure matrix-multiply bound would give: the step's GEMM FLOPs
divided by the ``torch.matmul`` throughput measured here on a 2708x448 by
448x448 product. Prints one JSON object.

Both models live in the same process and their steps alternate (dense, ugt,
dense, ugt, ...), so that drift in the machine's speed (large on shared
cloud CPUs: the same step varies by 20-50% from minute to minute) hits both
alike; the first ``--warmup`` steps of each are dropped (the heap grows to
its working size in the first few steps). ``ugt`` runs its default schedule
over ``warmup + steps`` epochs, so half of the measured steps are in the
sparsity ramp (where the threshold and the weight scale change every epoch).
``pair_ratio_median`` is the median of the per-pair ratios ugt/dense.

The process flushes denormals to zero and tunes glibc's allocator as the
``gnnmask`` command does (:mod:`gnnmask.train.runtime`;
``GNNMASK_MALLOC_TUNING=0`` to compare the allocator).

    python scripts/bench_mask_overhead.py [--steps 40] [--warmup 4] [--data-root DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from gnnmask.data import load_dataset
from gnnmask.train import RunConfig
from gnnmask.train.config import resolve_config
from gnnmask.train.device import resolve_device
from gnnmask.train.engine import build, make_optimizer, training_step
from gnnmask.train.runtime import configure_process, tune_cpu_allocator


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
    p.add_argument("--steps", type=int, default=40, help="measured steps per method")
    p.add_argument("--warmup", type=int, default=4, help="dropped steps per method")
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--hidden", type=int, default=448)
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    configure_process()  # as the gnnmask command line does, before any thread starts
    tuned = tune_cpu_allocator()
    device = resolve_device(args.device)
    data = load_dataset("cora", root=args.data_root).to(device)
    epochs = args.warmup + args.steps
    runs = {}
    for method in ("dense", "ugt"):
        config = resolve_config(RunConfig(
            method=method, dataset="cora", model="gcn", layers=args.layers,
            hidden=args.hidden, epochs=epochs, dropout=0.0, bias=False, device=str(device)))
        model, strategy = build(config, data)
        model = model.to(device)
        runs[method] = (config, model, strategy, make_optimizer(config, strategy, model))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    steps = {method: [] for method in runs}
    for epoch in range(epochs):
        for method, (config, model, strategy, optimizer) in runs.items():
            strategy.on_epoch_start(epoch, model)
            sync()
            t = time.perf_counter()
            training_step(config, model, strategy, optimizer, data, epoch)
            sync()
            steps[method].append(time.perf_counter() - t)
    dense, ugt = (steps[m][args.warmup :] for m in ("dense", "ugt"))
    dims = [data.num_features] + [args.hidden] * (args.layers - 1) + [data.num_classes]
    gflops = matmul_gflops(data.num_nodes, args.hidden)
    bound = step_gflop(data.num_nodes, dims) / gflops
    d, u = statistics.median(dense), statistics.median(ugt)
    print(json.dumps({
        "model": f"gcn L{args.layers} h{args.hidden}", "dataset": "cora",
        "device": str(device), "threads": torch.get_num_threads(),
        "steps_each": args.steps, "warmup": args.warmup, "malloc_tuned": tuned,
        "dense_step_s": round(d, 4), "ugt_step_s": round(u, 4),
        "matmul_gflops": round(gflops, 1), "bound_step_s": round(bound, 4),
        "ugt_over_dense": round(u / d, 3), "ugt_over_bound": round(u / bound, 3),
        "pair_ratio_median": round(statistics.median(b / a for a, b in zip(dense, ugt)), 3),
    }))


if __name__ == "__main__":
    main()
