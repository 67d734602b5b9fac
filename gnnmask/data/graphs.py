"""Graph-classification datasets: one union of many graphs.

:func:`load_graphs` returns every graph of a dataset as one PyG ``Batch``
(the disjoint union): node ``x``, ``edge_index`` and ``batch`` (node -> graph),
one label per graph in ``y`` ``[G]``, graph-level ``train_mask`` /
``val_mask`` / ``test_mask`` ``[G]``, and plain attributes ``name``,
``num_classes`` (and ``ogb_name`` for OGB datasets). Full-batch training runs
the backbone once over the union; mini-batches of graphs come from its
``index_select`` through PyG's ``DataLoader``.

Sources, all read through PyG's own classes from the data root (through the
writable cache of :mod:`gnnmask.data.registry`; nothing is downloaded):

* ``sbm-graphs``: generated in-process (:func:`generate_sbm_graphs`), the
  embedded default of ``--task graph``;
* TU datasets (``mutag``, ``proteins``, ``enzymes``): PyG's ``TUDataset``
  over ``<root>/tu/<NAME>/raw/<NAME>_*.txt``; node labels one-hot as
  features; a random 80/10/10 split drawn from ``(seed, split)``;
* OGB graph-property datasets (``ogbg-molhiv``): OGB's
  ``PygGraphPropPredDataset`` over ``<root>/ogb/ogbg_molhiv``; its official
  scaffold split; the integer atom features as floats; scored by OGB's
  ``Evaluator`` (ROC-AUC).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.utils import to_undirected

from gnnmask.data.csbm import generate_csbm
from gnnmask.data.registry import DatasetInfo, cache_entry, resolve_root
from gnnmask.errors import UserError

#: Parameters of :func:`generate_sbm_graphs` and their defaults.
SBM_GRAPHS_DEFAULTS = dict(graphs=1200, min_nodes=20, max_nodes=40, avg_degree=4.0,
                           homophily=(0.9, 0.5, 0.1), features=16, snr=3.0)

#: Fractions of the graphs in training and validation (the rest: test).
GRAPH_FRACTIONS = (0.8, 0.1)


def generate_sbm_graphs(graphs: int = 1200, min_nodes: int = 20, max_nodes: int = 40,
                        avg_degree: float = 4.0, homophily=(0.9, 0.5, 0.1),
                        features: int = 16, snr: float = 3.0, seed: int = 0) -> list[Data]:
    """Graphs drawn from stochastic block model regimes; the regime is the label.

    Graph ``i`` has class ``c = i mod R`` (``R = len(homophily)`` regimes,
    balanced) and is one two-block contextual SBM
    (:func:`gnnmask.data.csbm.generate_csbm`) with ``n`` nodes drawn
    uniformly from ``[min_nodes, max_nodes)``, average degree
    ``avg_degree`` and edge homophily ``homophily[c]``. Its node features are
    ``+mu`` or ``-mu`` by block, plus ``eps ~ N(0, I)``, with ``mu`` of norm
    ``snr`` in a random direction drawn anew for every graph, so neither the
    features alone nor the degrees tell the regimes apart: only whether
    neighbours share their features does, which deep message passing
    smooths away. Every draw comes from ``numpy`` generators seeded by
    ``(seed, i)``; the global RNG is never touched.
    """
    if not (isinstance(graphs, int) and graphs >= len(homophily) >= 2):
        raise UserError(f"sbm-graphs parameter graphs={graphs!r} is invalid; allowed: an "
                        f"integer >= the number of regimes ({len(homophily)}), at least 2")
    if not 4 <= min_nodes < max_nodes:
        raise UserError(f"sbm-graphs node counts [{min_nodes}, {max_nodes}) are invalid; "
                        "allowed: 4 <= min_nodes < max_nodes")
    out = []
    for i in range(graphs):
        child = int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0])
        n = int(np.random.default_rng(child).integers(min_nodes, max_nodes))
        c = i % len(homophily)
        _, edge_index, block = generate_csbm(n, 2, avg_degree, homophily[c], 1, 0.0,
                                             seed=child)
        rng = np.random.default_rng([child, 1])
        direction = rng.standard_normal(features)
        mean = snr * direction / np.linalg.norm(direction)
        x = (np.where(block.numpy()[:, None] == 0, mean, -mean)
             + rng.standard_normal((n, features)))
        x = torch.from_numpy(x).float()
        out.append(Data(x=x, edge_index=to_undirected(edge_index, num_nodes=n),
                        y=torch.tensor([c])))
    return out


def graph_split(num_graphs: int, seed: int, split: int) -> tuple[torch.Tensor, ...]:
    """Random 80/10/10 train/val/test masks over ``num_graphs`` graphs from
    ``(seed, split)`` (a generator of its own)."""
    gen = torch.Generator().manual_seed(int(seed) * 1000 + int(split))
    perm = torch.randperm(num_graphs, generator=gen)
    a = round(GRAPH_FRACTIONS[0] * num_graphs)
    b = a + round(GRAPH_FRACTIONS[1] * num_graphs)
    masks = []
    for idx in (perm[:a], perm[a:b], perm[b:]):
        m = torch.zeros(num_graphs, dtype=torch.bool)
        m[idx] = True
        masks.append(m)
    return tuple(masks)


def union(graphs: list[Data], masks, name: str, num_classes: int) -> Batch:
    """The disjoint union of ``graphs`` as one ``Batch`` with graph-level
    ``masks`` (train, val, test), ``name`` and ``num_classes``."""
    if not graphs:
        raise UserError(f"dataset {name!r} holds no graphs")
    batch = Batch.from_data_list(graphs)
    batch.y = batch.y.view(-1).long()
    batch.train_mask, batch.val_mask, batch.test_mask = (m.bool() for m in masks)
    batch.name, batch.num_classes = name, int(num_classes)
    return batch


def _read_pyg(info: DatasetInfo, root):
    """The PyG dataset object and the OGB split (or ``None``)."""
    import io

    lines = io.StringIO()  # PyG and OGB print progress
    with cache_entry(info, root) as pyg_root, contextlib.redirect_stdout(lines), \
            contextlib.redirect_stderr(lines), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        if info.pyg_class == "PygGraphPropPredDataset":
            from ogb.graphproppred import PygGraphPropPredDataset
            from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
            from torch_geometric.data.storage import GlobalStorage

            (pyg_root / info.subdir / "RELEASE_v1.txt").touch()
            with torch.serialization.safe_globals([DataEdgeAttr, DataTensorAttr,
                                                   GlobalStorage]):
                ds = PygGraphPropPredDataset(name=info.pyg_name, root=str(pyg_root))
            return ds, ds.get_idx_split()
        from torch_geometric.datasets import TUDataset

        return TUDataset(str(pyg_root), info.pyg_name), None


def load_graphs(info: DatasetInfo, root=None, split: int = 0, seed: int = 0,
                **params) -> Batch:
    """The union of the graphs of dataset ``info`` (see the module docstring);
    ``params`` only for the generated ``sbm-graphs``."""
    if info.pyg_class == "":
        unknown = sorted(set(params) - set(SBM_GRAPHS_DEFAULTS))
        if unknown:
            raise UserError(f"unknown sbm-graphs parameter {unknown[0]!r}; allowed: "
                            f"{', '.join(SBM_GRAPHS_DEFAULTS)}")
        p = {**SBM_GRAPHS_DEFAULTS, **params}
        graphs = generate_sbm_graphs(**p, seed=seed)
        return union(graphs, graph_split(len(graphs), seed, split), info.name,
                     len(p["homophily"]))
    if params:
        raise UserError(f"dataset '{info.name}' takes no parameters; got "
                        f"{', '.join(sorted(params))}")
    try:
        ds, idx = _read_pyg(info, resolve_root(root))
        graphs = []
        for g in ds:
            x = g.x.float() if g.x is not None else torch.ones(g.num_nodes, 1)
            graphs.append(Data(x=x, edge_index=to_undirected(g.edge_index,
                                                             num_nodes=g.num_nodes),
                               y=g.y.view(-1)[:1].long()))
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - a raw file PyG cannot read: name it
        raise UserError(f"dataset '{info.name}' cannot be read: {type(e).__name__}: "
                        f"{' '.join(str(e).split())[:300]}") from None
    if idx is not None:
        g = len(graphs)
        masks = []
        for key in ("train", "valid", "test"):
            m = torch.zeros(g, dtype=torch.bool)
            m[idx[key]] = True
            masks.append(m)
    else:
        masks = graph_split(len(graphs), seed, split)
    batch = union(graphs, masks, info.name, info.classes)
    if info.pyg_class == "PygGraphPropPredDataset":
        batch.ogb_name = info.pyg_name
    return batch
