"""An independent re-implementation of DropEdge's semi-supervised plain GCN
(Rong et al., ICLR 2020; the authors' ``mutigcn`` blocks without residual),
outside the package, to ask whether the published deeper rows follow from the
authors' 2-layer Cora script (the defaults below).

What it keeps from the authors' code and gnnmask's ``gcn`` does not: no
dropout on the input features (``--input-dropout`` adds it), the Kipf-style
uniform initialisation with biases (``--init glorot``: Glorot weights, zero
biases), and the checkpoint of lowest validation loss measured in the
training pass, with dropout on (``--select trainval``; ``evalloss`` and
``evalacc`` evaluate without dropout). ``--withbn`` and ``--withloop`` are the
code's batch norm and self-feature weights. Prints one line per seed and a
JSON summary with every seed's test accuracy::

    python scripts/dropedge_gcn_check.py --layers 8 --seeds 0,1,2 \\
        --data-root ../shared/datasets
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.utils import add_self_loops, degree

from gnnmask.data.loading import load_dataset


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", type=int, default=16)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.8)
    p.add_argument("--lr", type=float, default=0.007)
    p.add_argument("--wd", type=float, default=1e-5)
    p.add_argument("--epochs", type=int, default=400)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--init", default="kipf", choices=("kipf", "glorot"))
    p.add_argument("--input-dropout", type=float, default=0.0)
    p.add_argument("--select", default="trainval", choices=("trainval", "evalloss", "evalacc"))
    p.add_argument("--dataset", default="cora")
    p.add_argument("--withloop", action="store_true")
    p.add_argument("--withbn", action="store_true")
    p.add_argument("--data-root", default="datasets")
    return p.parse_args()


class Layer(nn.Module):
    """``A h W + h W_self + b``, then batch norm (each optional)."""

    def __init__(self, i: int, o: int, a):
        super().__init__()
        self.w = nn.Parameter(torch.empty(i, o))
        self.b = nn.Parameter(torch.empty(o))
        self.sw = nn.Parameter(torch.empty(i, o)) if a.withloop else None
        self.bn = nn.BatchNorm1d(o) if a.withbn else None
        std = 1 / math.sqrt(o)
        for w in (self.w, self.sw):
            if w is None:
                continue
            if a.init == "kipf":
                w.data.uniform_(-std, std)
            else:
                nn.init.xavier_uniform_(w)
        if a.init == "kipf":
            self.b.data.uniform_(-std, std)
        else:
            self.b.data.zero_()

    def forward(self, h, adj):
        out = adj @ (h @ self.w)
        if self.sw is not None:
            out = out + h @ self.sw
        out = out + self.b
        return self.bn(out) if self.bn is not None else out


class Net(nn.Module):
    def __init__(self, dims, a):
        super().__init__()
        self.a = a
        self.layers = nn.ModuleList(Layer(dims[i], dims[i + 1], a) for i in range(len(dims) - 1))

    def forward(self, h, adj):
        h = F.dropout(h, self.a.input_dropout, self.training)
        for i, layer in enumerate(self.layers):
            h = layer(h, adj)
            if i < len(self.layers) - 1:
                h = F.dropout(F.relu(h), self.a.dropout, self.training)
        return F.log_softmax(h, 1)


def main():
    a = parse()
    torch.set_num_threads(1)
    data = load_dataset(a.dataset, a.data_root)
    x = data.x.to_dense() if data.x.is_sparse else data.x
    x = x / x.sum(1, keepdim=True).clamp(min=1e-12)  # row-normalised, as the authors' loader
    n = x.size(0)
    ei, _ = add_self_loops(data.edge_index, num_nodes=n)
    deg = degree(ei[0], n)
    w = deg[ei[0]].pow(-0.5) * deg[ei[1]].pow(-0.5)
    adj = torch.sparse_coo_tensor(ei.flip(0), w, (n, n)).coalesce()
    y, tr, va, te = data.y, data.train_mask, data.val_mask, data.test_mask
    dims = [x.size(1)] + [a.hidden] * (a.layers - 1) + [int(y.max()) + 1]
    runs = []
    for seed in [int(v) for v in a.seeds.split(",")]:
        torch.manual_seed(seed)
        model = Net(dims, a)
        opt = torch.optim.Adam(model.parameters(), lr=a.lr, weight_decay=a.wd)
        best, state, t0 = None, None, time.time()
        for _ in range(a.epochs):
            model.train()
            opt.zero_grad()
            out = model(x, adj)
            F.nll_loss(out[tr], y[tr]).backward()
            opt.step()
            if a.select == "trainval":
                score = -F.nll_loss(out[va], y[va]).item()
            else:
                model.eval()
                with torch.no_grad():
                    o = model(x, adj)
                score = (-F.nll_loss(o[va], y[va]).item() if a.select == "evalloss"
                         else (o[va].argmax(1) == y[va]).float().mean().item())
            if best is None or score >= best:  # ties move the checkpoint, as the authors' code
                best, state = score, {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict(state)
        model.eval()
        with torch.no_grad():
            o = model(x, adj)
        acc = (o[te].argmax(1) == y[te]).float().mean().item()
        runs.append(acc)
        print(f"seed {seed} test {acc:.3f} ({time.time() - t0:.0f} s)", flush=True)
    t = torch.tensor(runs)
    std = t.std().item() if len(runs) > 1 else 0.0
    print(json.dumps(dict(vars(a), mean=round(t.mean().item(), 4), std=round(std, 4), runs=runs)))


if __name__ == "__main__":
    main()
