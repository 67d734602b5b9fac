"""An independent re-implementation of the Bag of Tricks benchmark's JKNet
(Chen et al., TPAMI 2022; the authors' ``Deep_GCN_Benchmarking`` code),
outside the package's models and trainer (only the data comes through
gnnmask's loader), to ask whether the benchmark's published JKNet rows
follow from the settings its code ships.

The model as the authors' code builds it: ``layers`` PyG ``GCNConv`` of
width ``hidden``, each followed by ReLU and dropout (no dropout on the input
features), every layer's (dropped) output concatenated, one linear layer to
the classes. Training as its trainer: Adam, full batch, up to ``epochs``
epochs, the epoch of strictly lowest validation loss (evaluated without
dropout) kept, stopping after ``patience`` epochs without one. Features
row-normalised, the public Planetoid split.

Two settings ship in the code's ``options/configs/JKNet.yml``: the one of the
commit that added the published 32-layer README table (``--config aug``:
width 16, lr 0.001, no weight decay, dropout 0.1) and the one a month later
(``--config sep``: width 16, lr 0.01, weight decay 5e-4, dropout 0.5). Prints
one line per seed and a JSON summary with every seed's test accuracy::

    python scripts/tricks_jknet_check.py --config aug --layers 32 --seeds 0,1,2 \\
        --data-root ../shared/datasets
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GCNConv
from torch_geometric.utils import add_self_loops, remove_self_loops

from gnnmask.data.loading import load_dataset

CONFIGS = {"aug": dict(hidden=16, lr=0.001, wd=0.0, dropout=0.1),
           "sep": dict(hidden=16, lr=0.01, wd=5e-4, dropout=0.5)}


def parse():
    """The command line, with the chosen config's settings filled in."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="aug", choices=tuple(CONFIGS))
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--patience", type=int, default=100)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--dataset", default="cora")
    p.add_argument("--data-root", default="datasets")
    a = p.parse_args()
    for k, v in CONFIGS[a.config].items():
        setattr(a, k, v)
    return a


class JK(nn.Module):
    r"""The benchmark's JKNet (Xu et al., ICML 2018, concatenating jumping
    knowledge): :math:`h_l = \mathrm{dropout}(\mathrm{ReLU}(\hat A h_{l-1}
    W_l + b_l))` for ``l = 1..L`` with :math:`h_0 = X` (not dropped), and
    logits :math:`[h_1 \| \dots \| h_L] W_o + b_o`; each dropped
    :math:`h_l` feeds both the next layer and the concatenation."""

    def __init__(self, in_dim, out_dim, a):
        super().__init__()
        self.p = a.dropout
        dims = [in_dim] + [a.hidden] * a.layers
        self.convs = nn.ModuleList(GCNConv(dims[i], dims[i + 1]) for i in range(a.layers))
        self.out = nn.Linear(a.hidden * a.layers, out_dim)

    def forward(self, x, ei):
        outs = []
        for conv in self.convs:
            x = F.dropout(F.relu(conv(x, ei)), self.p, self.training)
            outs.append(x)
        return self.out(torch.cat(outs, 1))


def main():
    """Train one network per seed; print each seed's test accuracy and a
    JSON summary."""
    a = parse()
    torch.set_num_threads(1)
    data = load_dataset(a.dataset, a.data_root)
    x = data.x.to_dense() if data.x.is_sparse else data.x
    x = x / x.sum(1, keepdim=True).clamp(min=1e-12)
    ei, _ = add_self_loops(remove_self_loops(data.edge_index)[0], num_nodes=x.size(0))
    y, tr, va, te = data.y, data.train_mask, data.val_mask, data.test_mask
    runs = []
    for seed in [int(v) for v in a.seeds.split(",")]:
        torch.manual_seed(seed)
        model = JK(x.size(1), int(y.max()) + 1, a)
        opt = torch.optim.Adam(model.parameters(), lr=a.lr, weight_decay=a.wd)
        best, test, bad, t0 = float("inf"), 0.0, 0, time.time()
        for _ in range(a.epochs):
            model.train()
            opt.zero_grad()
            F.cross_entropy(model(x, ei)[tr], y[tr]).backward()
            opt.step()
            model.eval()
            with torch.no_grad():
                o = model(x, ei)
            loss = F.cross_entropy(o[va], y[va]).item()
            if loss < best:
                best, test, bad = loss, (o[te].argmax(1) == y[te]).float().mean().item(), 0
            else:
                bad += 1
                if bad == a.patience:
                    break
        runs.append(test)
        print(f"seed {seed} test {test:.3f} ({time.time() - t0:.0f} s)", flush=True)
    t = torch.tensor(runs)
    std = t.std().item() if len(runs) > 1 else 0.0
    print(json.dumps(dict(vars(a), mean=round(t.mean().item(), 4), std=round(std, 4), runs=runs)))


if __name__ == "__main__":
    main()
