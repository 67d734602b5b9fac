"""Link-prediction data: held-out edges and the graph messages pass over.

:func:`link_split` turns a node dataset into a link-prediction one with PyG's
``RandomLinkSplit``; :func:`load_ogbl` reads an OGB link dataset
(``ogbl-collab``) with its official split. Both return one ``Data`` whose
``edge_index`` is the message-passing graph (training edges only, both
directions: the validation and test edges are never passed over) and whose
``{train,val,test}_pos`` (``[2, E]``, each undirected edge once) and
``{val,test}_neg`` hold the edges to score.
"""

from __future__ import annotations

import contextlib
import io
import random
import warnings
from collections.abc import Iterator

import torch
from torch_geometric.data import Data
from torch_geometric.transforms import RandomLinkSplit
from torch_geometric.utils import to_undirected

from gnnmask.data.registry import DatasetInfo, cache_entry, resolve_root
from gnnmask.errors import UserError

#: Fractions of the undirected edges held out for validation and test (the
#: split of the graph auto-encoder code, Kipf & Welling 2016, which UGS's
#: link-prediction code reuses: 85 / 5 / 10).
LINK_FRACTIONS = (0.05, 0.1)


@contextlib.contextmanager
def seeded_draws(seed: int) -> Iterator[None]:
    """Run a block that draws from torch's CPU generator and Python's
    ``random`` (as PyG's ``RandomLinkSplit`` and ``negative_sampling`` do)
    with both seeded to ``seed``, then put the caller's states back; CUDA's
    generators are left untouched."""
    state = random.getstate()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(int(seed))
            random.seed(int(seed))
            yield
    finally:
        random.setstate(state)


def link_split(data: Data, seed: int = 0, split: int = 0,
               fractions: tuple[float, float] = LINK_FRACTIONS) -> Data:
    """Hold out ``fractions`` of ``data``'s undirected edges for validation
    and test, each with as many sampled non-edges (PyG's
    ``RandomLinkSplit``, drawn from ``(seed, split)`` by
    :func:`seeded_draws`, so the caller's generators are left as they were).
    Node ``x`` and ``y`` are kept; the returned graph's ``edge_index`` holds
    the training edges only."""
    if data.edge_index.size(1) < 20:
        raise UserError(f"link prediction needs a graph with edges to hold out; this one has "
                        f"{data.edge_index.size(1)} directed edges; allowed: at least 20")
    with seeded_draws(int(seed) * 1000 + int(split)):
        transform = RandomLinkSplit(num_val=fractions[0], num_test=fractions[1],
                                    is_undirected=True, split_labels=True,
                                    add_negative_train_samples=False)
        train, val, test = transform(Data(x=data.x, edge_index=data.edge_index,
                                          num_nodes=data.num_nodes))
    out = Data(x=data.x, edge_index=train.edge_index, y=data.y,
               train_pos=train.pos_edge_label_index,
               val_pos=val.pos_edge_label_index, val_neg=val.neg_edge_label_index,
               test_pos=test.pos_edge_label_index, test_neg=test.neg_edge_label_index)
    for key in ("name", "num_classes"):
        if getattr(data, key, None) is not None:
            out[key] = getattr(data, key)
    return out


def load_ogbl(info: DatasetInfo, root=None) -> Data:
    """An OGB link dataset read by OGB's ``PygLinkPropPredDataset`` through
    the cache, with its official split (validation and test negatives as
    OGB gives them; Hits@K by OGB's ``Evaluator``)."""
    lines = io.StringIO()
    try:
        with cache_entry(info, resolve_root(root)) as pyg_root, \
                contextlib.redirect_stdout(lines), contextlib.redirect_stderr(lines), \
                warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            from ogb.linkproppred import PygLinkPropPredDataset
            from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
            from torch_geometric.data.storage import GlobalStorage

            (pyg_root / info.subdir / "RELEASE_v1.txt").touch()
            with torch.serialization.safe_globals([DataEdgeAttr, DataTensorAttr,
                                                   GlobalStorage]):
                ds = PygLinkPropPredDataset(name=info.pyg_name, root=str(pyg_root))
                edges = ds.get_edge_split()
            graph = ds[0]
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - a raw file OGB cannot read: name it
        raise UserError(f"dataset '{info.name}' cannot be read: {type(e).__name__}: "
                        f"{' '.join(str(e).split())[:300]}") from None
    n = graph.num_nodes
    train = edges["train"]["edge"].t().long()
    out = Data(x=graph.x.float(), edge_index=to_undirected(train, num_nodes=n),
               train_pos=train, val_pos=edges["valid"]["edge"].t().long(),
               val_neg=edges["valid"]["edge_neg"].t().long(),
               test_pos=edges["test"]["edge"].t().long(),
               test_neg=edges["test"]["edge_neg"].t().long(), num_nodes=n)
    out.name, out.num_classes, out.ogb_name = info.name, 0, info.pyg_name
    return out
