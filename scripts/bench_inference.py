"""What sparsity buys at inference: time and peak memory of one full-graph
forward pass, dense against masked against exported, at several weight
sparsities.

For each graph (``cora``, ``csbm-arxiv``) and depth, a GCN of width
``--hidden`` is timed

- ``dense``: the plain model (every weight a float);
- ``masked``: the same model with score masks at sparsity s (``mask_model``,
  global threshold): what training and gnnmask's own evaluation run, dense
  products with zeros in them;
- ``export-csr``: its export (:mod:`gnnmask.export`) with every weight
  multiplied as a sparse CSR matrix (``sparse_below=1``);
- ``export-dense``: the export with every weight dense (``sparse_below=0``):
  what the export saves without sparse kernels (a precomputed graph,
  propagation at the narrower width);
- ``export-auto``: the export as it loads by default (weights at most 1%
  dense as CSR, the others dense).

Timing: every variant of one (graph, depth) in the same process, interleaved
over ``--repeats`` rounds after a warm-up, median seconds per pass; ratios
are against ``dense`` of the same round. Peak memory: each variant again in a
fresh process, the rise of its peak resident set over the forward pass
(Linux's ``VmHWM``, reset just before it). Stored size: the export's weight
arrays (CSR values and indices) against the dense float32 weights, and the
whole file with the graph. Prints one JSON line per (graph, depth, variant, sparsity); run it
alone (``../shared/tools/idle-check``), at the default two threads.

    python scripts/bench_inference.py [--graphs cora,csbm-arxiv] [--depths 2,32]
        [--sparsities 0.9,0.95,0.99] [--hidden 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import time

import torch

from gnnmask.data import load_dataset
from gnnmask.export import export_model, stored_bytes
from gnnmask.export.runtime import ExportedGNN
from gnnmask.masks import mask_model
from gnnmask.metrics.cost import count_macs
from gnnmask.models import build_model


def variants(graph, depth: int, hidden: int, sparsities: list[float],
             macs: bool = True) -> dict:
    """``{(name, sparsity): (callable, info)}`` for one graph and depth
    (``macs``: count each model's MACs into its info)."""
    data = load_dataset(graph, seed=0)
    x, ei = data.x, data.edge_index
    torch.manual_seed(0)
    dense = build_model("gcn", data.num_features, hidden, data.num_classes, depth,
                        bias=False).eval()
    dense_bytes = sum(p.numel() for p in dense.parameters()) * 4
    out = {("dense", None): (lambda: dense(x, ei), {"weight_bytes": dense_bytes,
                                                    **(_macs(dense, x, ei) if macs else {})})}
    for s in sparsities:
        torch.manual_seed(0)
        masked = mask_model(build_model("gcn", data.num_features, hidden, data.num_classes,
                                        depth, bias=False), sparsity=s, seed=0).eval()
        spec = export_model(masked, x, ei)
        buf = io.BytesIO()
        torch.save(spec, buf)
        weights = sum(t.numel() * t.element_size() for w in spec["weights"].values()
                      for k, t in w.items() if k != "shape")
        info = {"weight_bytes": weights, "file_bytes": buf.tell(),
                "stored_bytes": stored_bytes(spec), **(_macs(masked, x, ei) if macs else {})}
        out[("masked", s)] = (lambda m=masked: m(x, ei), info)
        for name, below in (("export-csr", 1.0), ("export-dense", 0.0), ("export-auto", None)):
            exported = ExportedGNN(spec) if below is None else ExportedGNN(spec, below)
            out[(name, s)] = (lambda m=exported: m(x), info)
    return out


def _macs(model, x, ei) -> dict:
    c = count_macs(model, x, ei)
    return {"inference_macs": c["inference_macs"], "dense_macs": c["dense_macs"]}


def time_all(runs: dict, repeats: int) -> dict:
    """Median seconds per pass of every variant, interleaved round by round."""
    with torch.no_grad():
        for fn, _ in runs.values():
            fn()  # warm-up
        times = {k: [] for k in runs}
        for _ in range(repeats):
            for key, (fn, _) in runs.items():
                t0 = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


CHILD = r"""
import ctypes, gc, json, sys, torch
sys.path.insert(0, "scripts")
from bench_inference import variants
def kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
graph, depth, hidden, name, s = json.loads(sys.argv[1])
runs = variants(graph, depth, hidden, [] if s is None else [s], macs=False)
fn, _ = runs[(name, s)]
keep = {k: v for k, v in runs.items() if k == (name, s)}
del runs
gc.collect()
ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed memory back to the system first
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak resident set (VmHWM) starts again from the current one
base = kib("VmRSS")
with torch.no_grad():
    fn()
print(json.dumps({"peak_rise_mib": (kib("VmHWM") - base) / 1024}))
"""


def peak_memory(graph: str, depth: int, hidden: int, name: str, s) -> float | None:
    """The rise of the peak resident set over one pass, in a fresh process (MiB;
    Linux: the peak is reset through ``/proc/self/clear_refs`` just before)."""
    done = subprocess.run([sys.executable, "-c", CHILD,
                           json.dumps([graph, depth, hidden, name, s])],
                          capture_output=True, text=True)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_rise_mib"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--graphs", default="cora,csbm-arxiv")
    p.add_argument("--depths", default="2,32")
    p.add_argument("--sparsities", default="0.9,0.95,0.99")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    args = p.parse_args()
    sparsities = [float(s) for s in args.sparsities.split(",")]
    for graph in args.graphs.split(","):
        for depth in map(int, args.depths.split(",")):
            runs = variants(graph, depth, args.hidden, sparsities)
            seconds = time_all(runs, args.repeats)
            base = seconds[("dense", None)]
            for (name, s), (_, info) in runs.items():
                row = {"graph": graph, "depth": depth, "hidden": args.hidden,
                       "variant": name, "sparsity": s, "seconds": seconds[(name, s)],
                       "speedup_vs_dense": base / seconds[(name, s)], **info,
                       "threads": torch.get_num_threads(), "torch": torch.__version__}
                if not args.no_memory:
                    row["peak_rise_mib"] = peak_memory(graph, depth, args.hidden, name, s)
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
