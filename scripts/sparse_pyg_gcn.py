"""Random sparse training of PyG's own ``GCN`` with ``gnnmask.sparsify``, against dense.

A plain PyTorch training loop over ``torch_geometric.nn.models.GCN`` (2 layers,
width 256, dropout 0.5, Adam lr 0.01, weight decay 5e-4, 200 epochs, model
selected at the best validation accuracy), once dense and once with fixed
random masks at the given sparsity and layer-wise density distribution
(``gnnmask.sparsify``; the weights train, the pruned entries stay zero).
Prints one JSON line per run and a summary line; the achieved sparsity is
read from the masks after training.

    python scripts/sparse_pyg_gcn.py --dataset cora --sparsity 0.9 --distribution erk \\
        --seeds 0,1,2 [--data-root DIR]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics

import torch
import torch.nn.functional as F
from torch_geometric.nn.models import GCN

from gnnmask.data import load_dataset
from gnnmask.masks import get_mask_group, sparsify
from gnnmask.train.runtime import configure_process


def run(data, seed: int, sparsity: float | None, distribution: str, epochs: int,
        hidden: int) -> dict:
    torch.manual_seed(seed)
    model = GCN(data.num_features, hidden, num_layers=2, out_channels=data.num_classes,
                dropout=0.5)
    if sparsity is not None:
        sparsify(model, sparsity=sparsity, distribution=distribution, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    best = (-1.0, None)
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        out = model(data.x, data.edge_index)
        F.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(data.x, data.edge_index).argmax(-1)
        val = (pred[data.val_mask] == data.y[data.val_mask]).float().mean().item()
        if val > best[0]:
            best = (val, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[1])
    model.eval()
    with torch.no_grad():
        pred = model(data.x, data.edge_index).argmax(-1)
    row = {"seed": seed, "sparsity": sparsity, "val_acc": best[0],
           "test_acc": (pred[data.test_mask] == data.y[data.test_mask]).float().mean().item()}
    if sparsity is not None:
        achieved = get_mask_group(model).achieved_sparsity()
        row["achieved_sparsity"] = achieved["overall"]
        row["per_layer_sparsity"] = achieved["per_tensor"]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="cora")
    p.add_argument("--data-root", default=None)
    p.add_argument("--sparsity", type=float, default=0.9)
    p.add_argument("--distribution", default="erk")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--hidden", type=int, default=256)
    args = p.parse_args()
    configure_process()
    data = load_dataset(args.dataset, root=args.data_root)
    seeds = [int(s) for s in args.seeds.split(",")]
    summary = {}
    for label, sparsity in (("dense", None), ("sparse", args.sparsity)):
        rows = [run(data, s, sparsity, args.distribution, args.epochs, args.hidden)
                for s in seeds]
        for row in rows:
            print(json.dumps({"run": label, **row}), flush=True)
        accs = [r["test_acc"] for r in rows]
        summary[label] = (statistics.fmean(accs), statistics.stdev(accs) if len(accs) > 1 else 0)
    print(json.dumps({"dataset": args.dataset, "sparsity": args.sparsity,
                      "distribution": args.distribution,
                      "dense_test": summary["dense"], "sparse_test": summary["sparse"],
                      "gap": summary["dense"][0] - summary["sparse"][0]}))


if __name__ == "__main__":
    main()
