"""Seconds per epoch and peak memory at ogbn-arxiv's size, full-batch and mini-batch.

On ``csbm-arxiv`` (generated in-process: 169,343 nodes, 1,166,243 undirected
edges, 128 features, 40 classes, ogbn-arxiv's split sizes), for every
(method, depth, mode) asked for: one training epoch (full-batch: one step;
mini-batch: every batch of ``--batch-size`` training nodes with
``--num-neighbors`` sampled per node and layer) and one full-graph
evaluation, after a warm-up epoch (full-batch) or batches (mini-batch). Each
configuration runs in a fresh process, so its peak resident memory
(``ru_maxrss``) is its own; one that runs out of memory or time is reported
as such. A mini-batch epoch can be estimated from its first ``--max-batches``
batches (the record says so). Prints one JSON line per configuration.
Time it alone (``../shared/tools/idle-check``).

    python scripts/bench_scale.py [--layers 2,8,32] [--methods dense,ugt]
        [--modes full,mini] [--hidden 256] [--device cpu] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time
import torch
from gnnmask.train.runtime import configure_process
configure_process()
from gnnmask.data import load_dataset
from gnnmask.data.sampling import neighbor_loader, parse_fanout
from gnnmask.train import RunConfig, resolve_config
from gnnmask.train.engine import build, make_optimizer, make_task, model_features
from gnnmask.train.engine import training_step
spec = json.loads(sys.argv[1])
device = torch.device(spec["device"])
t0 = time.perf_counter()
data = load_dataset("csbm-arxiv", seed=0).to(device)
data.features = model_features(resolve_config(RunConfig(dataset="csbm-arxiv")), data.x)
load_s = time.perf_counter() - t0
config = resolve_config(RunConfig(dataset="csbm-arxiv", method=spec["method"],
                                  layers=spec["layers"], hidden=spec["hidden"], epochs=10,
                                  dropout=0.0, device=spec["device"]))
model, method = build(config, data)
task = make_task(config)
optimizer = make_optimizer(config, method, model)
sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
def evaluate():
    model.eval()
    with torch.no_grad():
        model(*method.inputs(data)).argmax(-1)
def epoch(batches):
    steps = 0
    if batches is None:
        training_step(config, model, method, optimizer, data, 0)
        return 1
    for batch in batches:
        batch = batch.to(device)
        batch.features = model_features(config, batch.x)
        training_step(config, model, method, optimizer, batch, 0,
                      lambda net, out, b=batch: task.batch_loss(net, out, b))
        steps += 1
        if spec["max_batches"] and steps >= spec["max_batches"]:
            break
    return steps
loader = None
if spec["mode"] == "mini":
    loader = neighbor_loader(data, data.train_mask.nonzero().view(-1),
                             parse_fanout(spec["num_neighbors"], spec["layers"]),
                             spec["batch_size"], seed=0)
total_batches = 1 if loader is None else len(loader)
method.on_epoch_start(0, model)
epoch(None if loader is None else iter(loader))  # warm-up
sync()
t = time.perf_counter()
steps = epoch(None if loader is None else iter(loader))
sync()
train_s = time.perf_counter() - t
t = time.perf_counter()
evaluate()
sync()
eval_s = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
out = dict(spec, status="ok", batches_timed=steps, batches_per_epoch=total_batches,
           train_epoch_s=round(train_s * total_batches / steps, 3), eval_s=round(eval_s, 3),
           estimated=steps < total_batches, peak_rss_gib=round(peak, 2),
           load_s=round(load_s, 1))
if device.type == "cuda":
    out["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
print(json.dumps(out))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", default="2,8,32")
    p.add_argument("--methods", default="dense,ugt")
    p.add_argument("--modes", default="full,mini")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--num-neighbors", default="10,5")
    p.add_argument("--max-batches", type=int, default=20,
                   help="time at most this many batches of a mini-batch epoch (0: all)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per configuration")
    args = p.parse_args()
    for mode in args.modes.split(","):
        for layers in (int(x) for x in args.layers.split(",")):
            for method in args.methods.split(","):
                spec = dict(method=method, layers=layers, hidden=args.hidden, mode=mode,
                            batch_size=args.batch_size, num_neighbors=args.num_neighbors,
                            max_batches=args.max_batches, device=args.device)
                started = time.perf_counter()
                try:
                    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)],
                                          capture_output=True, text=True, timeout=args.timeout)
                except subprocess.TimeoutExpired:
                    print(json.dumps({**spec, "status": f"over {args.timeout} s"}), flush=True)
                    continue
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
                if proc.returncode == 0 and lines:
                    print(lines[-1], flush=True)
                    continue
                oom = proc.returncode in (-9, 137) or "MemoryError" in proc.stderr \
                    or "out of memory" in proc.stderr
                print(json.dumps({**spec, "status": "out of memory" if oom else
                                  f"failed ({proc.returncode}): {proc.stderr[-300:]}",
                                  "wall_s": round(time.perf_counter() - started, 1)}),
                      flush=True)


if __name__ == "__main__":
    main()
