"""Cost of the GAT code's dropout placement (``--gat-dropout heads``) and of
drawing its per-head input dropout among the stored entries of bag-of-words
features.

On a Planetoid graph (``--dataset``, default CiteSeer: 3703 features, 0.9%
non-zero), a 2-layer GAT of 8 heads of 8 units as ``--preset gat-paper``
builds it, measures in one process the median seconds of a training step
(forward, cross-entropy on the training nodes, backward) of four variants
whose steps alternate: PyG's placement (``inputs``); ``heads`` as gnnmask
runs it (the input turned to CSR by :func:`gnnmask.models.deep.sparse_features`
when at most 5% of it is non-zero, each head's draw then over the stored
entries); ``heads`` drawing every head's dropout over the dense feature matrix
(``heads-dense``); and over the stored entries of a CSR copy whatever the
density (``heads-csr``). Prints one JSON object; run it with nothing else
computing::

    python scripts/bench_gat_heads.py [--dataset pubmed] [--steps 30] [--data-root DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

import gnnmask.models.gat as gat
from gnnmask.data import load_dataset
from gnnmask.models import build_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--data-root", default=None)
    p.add_argument("--dataset", default="citeseer")
    args = p.parse_args()
    data = load_dataset(args.dataset, root=args.data_root)
    x, ei, y, train = data.x, data.edge_index, data.y, data.train_mask
    options = dict(heads=8, activation="elu", dropout=0.6, attention_dropout=0.6)
    models = {"inputs": build_model("gat", x.size(1), 64, int(y.max()) + 1, 2, **options),
              "heads": build_model("gat", x.size(1), 64, int(y.max()) + 1, 2,
                                   gat_dropout="heads", **options)}
    sparse = gat.sparse_features

    def step(name: str) -> float:
        model = models["heads" if name.startswith("heads") else name]
        gat.sparse_features = {"heads-dense": lambda t: t,
                               "heads-csr": lambda t: t.to_sparse_csr()}.get(name, sparse)
        t = time.perf_counter()
        F.cross_entropy(model(x, ei)[train], y[train]).backward()
        model.zero_grad()
        return time.perf_counter() - t

    names = ("inputs", "heads", "heads-dense", "heads-csr")
    times = {n: [] for n in names}
    for i in range(args.warmup + args.steps):
        for n in names:
            s = step(n)
            if i >= args.warmup:
                times[n].append(s)
    gat.sparse_features = sparse
    med = {n: statistics.median(v) for n, v in times.items()}
    print(json.dumps({"step_s_median": med, "threads": torch.get_num_threads(),
                      "heads_over_inputs": med["heads"] / med["inputs"],
                      "dense_draw_over_stored_draw": med["heads-dense"] / med["heads-csr"],
                      "density": float((x != 0).float().mean()),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
