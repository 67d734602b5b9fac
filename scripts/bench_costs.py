"""What the sparse-training baselines cost (docs/RESULTS.md, issues 13 and 14).

Three measurements on Cora, each printed as one JSON line:

``prune``   seconds to score a 32-layer, 448-wide GCN with each pruning-at-
            initialisation criterion (SNIP, GraSP, SynFlow's 100 iterations)
            and prune it to sparsity 0.9: the ``prepare`` step of each method.
``rigl``    one RigL topology update (the dense-gradient grow scores, drop,
            grow, optimiser state reset) against one training step of the
            same 32-layer, 448-wide sparse GCN (median seconds over
            ``--steps``; the step with the dense gradient recorded, which is
            the step an update follows, is timed separately).
``iterative`` wall seconds and CPU seconds of one ``imp`` and one ``ugs`` run
            to sparsity 0.9 (2-layer GCN, width 256, 200 epochs per round, the
            settings of ``scripts/sparsity_study.sh``).

Run alone on the machine (``../shared/tools/idle-check``): every figure is a
wall-clock time. The process configures itself as the ``gnnmask`` command does.

    python scripts/bench_costs.py [prune|rigl|iterative|all] [--data-root DIR] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from gnnmask.data import load_dataset
from gnnmask.masks import get_mask_group
from gnnmask.methods.dynamic import topology_update
from gnnmask.train import RunConfig, train
from gnnmask.train.config import resolve_config
from gnnmask.train.device import resolve_device
from gnnmask.train.engine import build, make_optimizer, training_step
from gnnmask.train.runtime import configure_process


def deep_config(method: str, device, **kw) -> RunConfig:
    return resolve_config(RunConfig(method=method, dataset="cora", model="gcn", layers=32,
                                    hidden=448, sparsity=0.9, epochs=200, device=str(device),
                                    **kw))


def bench_prune(data, device) -> dict:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    out = {}
    for method in ("random", "snip", "grasp", "synflow"):
        config = deep_config(method, device)
        sync()
        t = time.perf_counter()
        model, strategy = build(config, data)
        sync()
        out[method] = {"prepare_s": round(time.perf_counter() - t, 3),
                       "scoring_s": round(strategy.prune_time_s, 3),
                       "sparsity": get_mask_group(model).achieved_sparsity()["overall"]}
    return {"bench": "prune", "model": "gcn L32 h448", "sparsity": 0.9, **out}


def bench_rigl(data, device, steps: int) -> dict:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    config = deep_config("rigl", device, dropout=0.0)
    model, strategy = build(config, data)
    strategy.interval = 10**9  # no scheduled update inside the timed steps: timed apart
    optimizer = make_optimizer(config, strategy, model)
    group = get_mask_group(model)
    plain, tracked, update = [], [], []
    for step in range(steps + 2):
        for track, times in ((False, plain), (True, tracked)):
            group.track_dense_grad = track
            sync()
            t = time.perf_counter()
            training_step(config, model, strategy, optimizer, data, step)
            sync()
            times.append(time.perf_counter() - t)
        sync()
        t = time.perf_counter()
        topology_update(model, 0.3, strategy.grow_scores(model), optimizer)
        group.dense_grads()
        sync()
        update.append(time.perf_counter() - t)
    plain, tracked, update = (statistics.median(x[2:]) for x in (plain, tracked, update))
    return {"bench": "rigl", "model": "gcn L32 h448", "sparsity": 0.9, "steps": steps,
            "step_s": round(plain, 4), "step_with_dense_grad_s": round(tracked, 4),
            "update_s": round(update, 4), "update_over_step": round(update / plain, 3),
            "per_step_at_interval_10": round((update + tracked - plain) / 10 / plain, 4)}


def bench_iterative(data, device) -> dict:
    out = {}
    for method in ("imp", "ugs"):
        config = RunConfig(method=method, dataset="cora", model="gcn", layers=2, hidden=256,
                           sparsity=0.9, epochs=200, lr=0.01, layer_metrics="none",
                           device=str(device))
        wall, cpu = time.perf_counter(), time.process_time()
        record = train(config, data)
        out[method] = {"wall_min": round((time.perf_counter() - wall) / 60, 2),
                       "cpu_min": round((time.process_time() - cpu) / 60, 2),
                       "rounds": len(record.get("rounds") or []),
                       "test_acc": round(record["test_acc"], 4),
                       "achieved_sparsity": round(record["method"]["achieved_sparsity"], 4)}
    return {"bench": "iterative", "model": "gcn L2 h256", "epochs_per_round": 200, **out}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", nargs="?", default="all", choices=["prune", "rigl", "iterative",
                                                               "all"])
    p.add_argument("--steps", type=int, default=10, help="measured RigL steps and updates")
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    configure_process()
    device = resolve_device(args.device)
    data = load_dataset("cora", root=args.data_root).to(device)
    common = {"device": str(device), "threads": torch.get_num_threads()}
    if args.what in ("prune", "all"):
        print(json.dumps({**bench_prune(data, device), **common}), flush=True)
    if args.what in ("rigl", "all"):
        print(json.dumps({**bench_rigl(data, device, args.steps), **common}), flush=True)
    if args.what in ("iterative", "all"):
        print(json.dumps({**bench_iterative(data, device), **common}), flush=True)


if __name__ == "__main__":
    main()
