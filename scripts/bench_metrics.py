#!/usr/bin/env python
"""Time and memory of every over-smoothing metric on a large random graph.

Each metric runs in a fresh subprocess that builds the same seeded graph
(``--nodes`` nodes, ``--edges`` random node pairs stored in both directions,
Gaussian ``--features``, ``--classes`` uniform labels), then times one call
(wall and CPU seconds; the call includes coalescing ``edge_index``) and reads
the process's peak resident memory (``ru_maxrss``). Prints one JSON object.

Sampled metrics (``smv``, ``group_distance_ratio``, ``mad_gap`` above 5,000
nodes) also report their values for two further seeds, untimed, as a view of
the sampling spread; ``--validate N`` additionally compares sampled and exact
values on a smaller random graph of ``N`` nodes and the same average degree.
A ``null`` value is a metric without pairs to average: with the paper's orders
(3 / 8) a random graph of this density has diameter ~6, so no pair is remote
and MADGap is undefined; ``mad_gap_near2_far4`` shows a defined case.

    python scripts/bench_metrics.py            # the 100k-node / 1M-edge benchmark
    python scripts/bench_metrics.py --validate 20000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

TARGET_SECONDS, TARGET_MIB = 10.0, 2048.0

# name -> (registry metric, keyword arguments, sampled above 5,000 nodes?)
CASES = {
    "mad_all": ("mad", {"target": "all"}, False),
    "mad_neighbors": ("mad", {"target": "neighbors"}, False),
    "mad_remote": ("mad", {"target": "remote"}, False),
    "mad_gap": ("mad_gap", {}, True),  # paper's orders 3 / 8
    "mad_gap_near2_far4": ("mad_gap", {"near_hops": 2, "far_hops": 4}, True),
    "dirichlet": ("dirichlet", {}, False),
    "dirichlet_normalized": ("dirichlet_normalized", {}, False),
    "smv": ("smv", {}, True),
    "group_distance_ratio": ("group_distance_ratio", {}, True),
    "effective_rank": ("effective_rank", {}, False),
    "numerical_rank": ("numerical_rank", {}, False),
}


def make_data(nodes: int, edges: int, features: int, classes: int, seed: int):
    import torch

    gen = torch.Generator().manual_seed(seed)
    pairs = torch.randint(0, nodes, (2, edges), generator=gen)
    edge_index = torch.cat([pairs, pairs.flip(0)], 1)
    x = torch.randn(nodes, features, generator=gen)
    y = torch.randint(0, classes, (nodes,), generator=gen)
    return x, edge_index, y


def call(case: str, x, edge_index, y, **extra) -> float:
    from gnnmask.metrics import METRICS

    metric, kwargs, _ = CASES[case]
    fn = METRICS[metric]
    kwargs = {**kwargs, **extra}
    if metric == "group_distance_ratio":
        return fn(x, y, **kwargs)
    if metric in ("mad", "mad_gap", "dirichlet", "dirichlet_normalized"):
        return fn(x, edge_index, **kwargs)
    return fn(x, **kwargs)


def child(args) -> None:
    """Run one case and print its JSON record."""
    import torch

    from gnnmask.metrics import EXACT_MAX_NODES

    x, edge_index, y = make_data(args.nodes, args.edges, args.features, args.classes, args.seed)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0, c0 = time.perf_counter(), time.process_time()
    value = call(args.child, x, edge_index, y)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    record = {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
              "peak_mib": round(peak, 1), "extra_mib": round(peak - base, 1),
              "value": value, "threads": torch.get_num_threads()}
    if CASES[args.child][2]:
        record["exact"] = args.nodes <= EXACT_MAX_NODES
        if not record["exact"]:
            record["other_seeds"] = [call(args.child, x, edge_index, y, seed=s) for s in (1, 2)]
    print(json.dumps(finite(record), allow_nan=False))


def validate(args) -> dict:
    """Sampled (default) vs exact values on a smaller graph, same degree."""
    nodes = args.validate
    edges = round(args.edges * nodes / args.nodes)
    x, edge_index, y = make_data(nodes, edges, args.features, args.classes, args.seed)
    out = {"nodes": nodes, "edges": edges}
    for case, (_, _, sampled) in CASES.items():
        if sampled:
            t0 = time.perf_counter()
            exact = call(case, x, edge_index, y, exact=True)
            t1 = time.perf_counter()
            est = call(case, x, edge_index, y, exact=False)
            out[case] = {"exact": exact, "sampled": est, "abs_error": abs(est - exact),
                         "exact_seconds": round(t1 - t0, 2),
                         "sampled_seconds": round(time.perf_counter() - t1, 2)}
    return out


def finite(obj):
    """JSON-safe copy: NaN (a metric with no pair to average) becomes null."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=100_000)
    p.add_argument("--edges", type=int, default=1_000_000)
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="*", choices=list(CASES), help="run only these cases")
    p.add_argument("--validate", type=int, metavar="N", help="also check sampling on N nodes")
    p.add_argument("--child", choices=list(CASES), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    passthrough = [f"--{k}={getattr(args, k)}" for k in ("nodes", "edges", "features",
                                                          "classes", "seed")]
    result = {"graph": {"nodes": args.nodes, "random_pairs": args.edges,
                        "features": args.features, "classes": args.classes},
              "targets": {"seconds": TARGET_SECONDS, "peak_mib": TARGET_MIB},
              "load_average_before": os.getloadavg(), "metrics": {}}
    for case in args.only or CASES:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), f"--child={case}",
                               *passthrough], capture_output=True, text=True, check=True)
        record = json.loads(proc.stdout.strip().splitlines()[-1])
        record["meets_targets"] = (record["seconds"] < TARGET_SECONDS
                                   and record["peak_mib"] < TARGET_MIB)
        result["metrics"][case] = record
    result["load_average_after"] = os.getloadavg()
    result["all_meet_targets"] = all(r["meets_targets"] for r in result["metrics"].values())
    if args.validate:
        result["sampling_check"] = validate(args)
    print(json.dumps(finite(result), indent=1, allow_nan=False))


if __name__ == "__main__":
    main()
