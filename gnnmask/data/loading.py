"""Loading datasets into one uniform :class:`~torch_geometric.data.Data` shape."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import numpy as np
import torch
import torch_geometric.transforms as T
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from gnnmask.data.csbm import PRESETS, csbm_params, generate_csbm
from gnnmask.data.registry import (
    DATASETS,
    DatasetInfo,
    cache_entry,
    check_root,
    get_info,
    resolve_root,
    verify_files,
)
from gnnmask.errors import UserError

log = logging.getLogger(__name__)
TRAIN_PER_CLASS, VAL_PER_CLASS = 20, 30


class _LogLines(io.TextIOBase):
    """A text stream that passes each line written to it to ``log.info``
    (and drops what logging itself writes while it runs, e.g. a handler's
    error report, which would otherwise come back here)."""

    def __init__(self, name: str):
        self.name, self.busy = name, False

    def write(self, text: str) -> int:
        if not self.busy:
            self.busy = True
            try:
                for line in text.splitlines():
                    if line.strip():
                        log.info("%s: %s", self.name, line.strip())
            finally:
                self.busy = False
        return len(text)


def random_split(y: torch.Tensor, num_classes: int, seed: int = 0, split: int = 0):
    """Per-class random split: 20 train, 30 validation, the rest test (Shchur et al. 2018).

    The permutation comes from ``numpy.random.default_rng([seed, split])``, so
    each ``(seed, split)`` pair gives its own split, reproducibly. A class with
    50 nodes or fewer gets no test nodes (and fewer train/val nodes if smaller).
    Returns ``(train_mask, val_mask, test_mask)``.
    """
    rng = np.random.default_rng([seed, split])
    labels = y.numpy()
    masks = [torch.zeros(len(labels), dtype=torch.bool) for _ in range(3)]
    bounds = (0, TRAIN_PER_CLASS, TRAIN_PER_CLASS + VAL_PER_CLASS, None)
    for c in range(num_classes):
        idx = torch.from_numpy(rng.permutation(np.flatnonzero(labels == c)))
        for mask, lo, hi in zip(masks, bounds[:-1], bounds[1:]):
            mask[idx[lo:hi]] = True
    return tuple(masks)


#: ogbn-arxiv's split sizes as fractions (90,941 / 29,799 / 48,603 of 169,343).
ARXIV_FRACTIONS = (0.537, 0.176)


def fraction_split(n: int, fractions: tuple[float, float], seed: int = 0, split: int = 0):
    """Random train/val/test masks with the given train and validation
    fractions (the rest test), from ``numpy.random.default_rng([seed, split])``."""
    perm = torch.from_numpy(np.random.default_rng([seed, split]).permutation(n))
    a, b = round(fractions[0] * n), round((fractions[0] + fractions[1]) * n)
    return tuple(_index_mask(p, n) for p in (perm[:a], perm[a:b], perm[b:]))


def _index_mask(idx: torch.Tensor, n: int) -> torch.Tensor:
    mask = torch.zeros(n, dtype=torch.bool)
    mask[idx] = True
    return mask


def _check_int(what: str, value, upper: int | None = None, where: str = "") -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0
    if not ok or (upper is not None and value >= upper):
        allowed = ("a non-negative integer" if upper is None else
                   "0 (the dataset has one fixed split)" if upper == 1 else f"0..{upper - 1}")
        raise UserError(f"{what} {value!r} out of range{where}; allowed: {allowed}")
    return int(value)


def _load_pyg(info: DatasetInfo, root) -> tuple[Data, dict]:
    """The raw PyG graph (via the cache mirror) and a dict of split masks/indices;
    a file PyG cannot read is a :class:`UserError` naming it."""
    try:
        return _process(info, root)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - a raw file PyG cannot read: name it
        problems = verify_files(info, root, checksums=False)
        detail = problems[0] if problems else f"{type(e).__name__}: {' '.join(str(e).split())}"
        raise UserError(f"dataset '{info.name}' cannot be read: {detail[:300]}; check the files "
                        "with `gnnmask datasets --check`") from None


def _process(info: DatasetInfo, root) -> tuple[Data, dict]:
    import torch_geometric.datasets as pyg_datasets

    # PyG and OGB print progress ("Processing...", download bars): to the log instead
    lines = _LogLines(info.name)
    with cache_entry(info, root) as pyg_root, contextlib.redirect_stdout(lines), \
            contextlib.redirect_stderr(lines):
        if info.pyg_class == "PygNodePropPredDataset":
            from ogb.nodeproppred import PygNodePropPredDataset
            from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
            from torch_geometric.data.storage import GlobalStorage

            # OGB asks interactively to re-download a folder without its release marker,
            # prints progress to stdout, and torch.load()s its own processed file with
            # torch's weights-only default, which needs PyG's classes allowed.
            (pyg_root / info.subdir / "RELEASE_v1.txt").touch()
            with torch.serialization.safe_globals(
                    [DataEdgeAttr, DataTensorAttr, GlobalStorage]), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                ds = PygNodePropPredDataset(name=info.pyg_name, root=str(pyg_root))
            split = ds.get_idx_split()
        else:
            cls = getattr(pyg_datasets, info.pyg_class)
            args = (info.pyg_name,) if info.pyg_name else ()
            # Normalising as a pre-transform stores the normalised features in the cache.
            pre = T.NormalizeFeatures() if info.normalize else None
            ds = cls(str(pyg_root), *args, pre_transform=pre)
            split = None
        data = ds[0]
    return data, split


def load_dataset(name: str, root=None, split: int = 0, seed: int = 0, **params) -> Data:
    """Load dataset ``name`` (case-insensitive, see :data:`DATASETS`) as one ``Data``.

    The result has ``x`` (float32), ``edge_index`` (undirected, coalesced, no
    duplicates; self-loops are kept where the source has them), ``y`` (long
    ``[N]``), bool ``train_mask``/``val_mask``/``test_mask`` ``[N]``, and plain
    attributes ``name`` (registry name) and ``num_classes``; ogbn-arxiv also
    ``ogb_name``. Splits:

    * planetoid (cora, citeseer, pubmed): the public split; ``split`` must be 0;
    * geom-gcn (texas, wisconsin, cornell, actor): shipped split ``split`` in 0..9;
    * random-20-30 (amazon-*, coauthor-*, csbm): :func:`random_split` drawn from
      ``(seed, split)`` (any non-negative integers);
    * random-arxiv (csbm-arxiv): ogbn-arxiv's split sizes, 53.7% train, 17.6%
      validation, the rest test, drawn from ``(seed, split)``;
    * ogb-time (ogbn-arxiv): the official split; ``split`` must be 0.

    Bag-of-words features (all but ogbn-arxiv and csbm) are row-normalised.
    ``params`` are only accepted by the generated graphs, ``csbm`` and
    ``csbm-arxiv`` (an ogbn-arxiv-sized preset; see :mod:`gnnmask.data.csbm`;
    the graph itself depends on ``seed`` only). Raw files are read from the data
    root (:func:`resolve_root`) through the writable cache; nothing is
    downloaded.
    """
    info = get_info(name)
    seed = _check_int("seed", seed)
    split = _check_int("split", split, info.splits, f" for dataset '{info.name}'")
    if info.name in PRESETS:
        check_root(info.name, root)
        p = csbm_params(**{**PRESETS[info.name], **params})
        x, edge_index, y = generate_csbm(**p, seed=seed)
        data, num_classes, masks = Data(x=x, edge_index=edge_index, y=y), p["classes"], None
    else:
        if params:
            raise UserError(f"dataset '{info.name}' takes no parameters; got "
                            f"{', '.join(sorted(params))}")
        data, idx = _load_pyg(info, resolve_root(root))
        num_classes = info.classes
        if info.split == "geom-gcn":
            masks = tuple(data[k][:, split] for k in ("train_mask", "val_mask", "test_mask"))
        elif info.split == "ogb-time":
            masks = tuple(_index_mask(idx[k], data.num_nodes) for k in ("train", "valid", "test"))
        elif info.split == "public":
            masks = (data.train_mask, data.val_mask, data.test_mask)
        else:
            masks = None
    n = data.num_nodes
    if info.split == "random-arxiv":
        masks = fraction_split(n, ARXIV_FRACTIONS, seed=seed, split=split)
    elif masks is None:
        masks = random_split(data.y.view(-1), num_classes, seed=seed, split=split)
    out = Data(x=data.x.float(), edge_index=to_undirected(data.edge_index, num_nodes=n),
               y=data.y.view(-1).long(), train_mask=masks[0].bool().clone(),
               val_mask=masks[1].bool().clone(), test_mask=masks[2].bool().clone())
    out.name, out.num_classes = info.name, int(num_classes)
    if info.pyg_class == "PygNodePropPredDataset":
        out.ogb_name = info.pyg_name
    return out


def dataset_of(data, dataset: str) -> str:
    """The name under which a run on ``data`` is recorded, given the
    configured ``dataset``; :class:`UserError` when the two disagree.

    ``data`` loaded by :func:`load_dataset` carries its registry ``name``,
    which must be ``dataset``. A graph of one's own (no registered ``name``)
    is recorded under ``dataset``: a name outside the registry, or a
    registered one whose node, feature and class counts it has.
    """
    needed = ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask")
    if not isinstance(data, Data) or any(getattr(data, k, None) is None for k in needed):
        raise UserError(f"data {type(data).__name__} is invalid; allowed: a torch_geometric "
                        f"Data with {', '.join(needed)} (as load_dataset returns)")
    if not isinstance(getattr(data, "num_classes", None), int):
        raise UserError("data has no integer num_classes; set data.num_classes")
    name = getattr(data, "name", None)
    def known(n) -> bool:
        return isinstance(n, str) and n.strip().lower() in DATASETS

    registered = name if known(name) else None
    if registered is not None:
        if not known(dataset) or get_info(dataset).name != get_info(registered).name:
            raise UserError(f"data is the {registered!r} graph but the config's dataset is "
                            f"{dataset!r}; allowed: RunConfig(dataset={registered!r})")
        return get_info(registered).name
    if not known(dataset):
        return dataset
    info = get_info(dataset)
    have = (int(data.num_nodes), int(data.num_features), int(data.num_classes))
    want = (info.nodes, info.features, info.classes)
    if info.name not in PRESETS and have == want:
        return info.name
    raise UserError(f"data ({have[0]:,} nodes, {have[1]:,} features, {have[2]} classes) is not "
                    f"dataset {info.name!r} ({want[0]:,} nodes, {want[1]:,} features, "
                    f"{want[2]} classes); allowed: a name of your own, e.g. "
                    "RunConfig(dataset='my-graph'), or load_dataset's graph")


def evaluate_accuracy(data: Data, pred: torch.Tensor, mask: torch.Tensor) -> float:
    """Fraction of nodes in ``mask`` whose predicted label ``pred`` equals ``data.y``.

    ``pred`` is a long ``[N]`` tensor of labels (``[N, C]`` scores are reduced
    by argmax). Datasets with an ``ogb_name`` are scored by OGB's own
    :class:`ogb.nodeproppred.Evaluator`.
    """
    pred = torch.as_tensor(pred)
    if pred.dim() == 2:
        pred = pred.argmax(dim=-1)
    n = data.num_nodes
    if pred.shape != (n,) or torch.as_tensor(mask).shape != (n,):
        raise UserError(f"pred {tuple(pred.shape)} and mask {tuple(torch.as_tensor(mask).shape)}"
                        f" must both have shape ({n},), one entry per node")
    mask = torch.as_tensor(mask, dtype=torch.bool, device=pred.device)
    if not mask.any():
        raise UserError("mask selects no nodes; allowed: a mask with at least one True entry")
    y_true, y_pred = data.y.to(pred.device)[mask], pred[mask].long()
    if getattr(data, "ogb_name", None):
        from ogb.nodeproppred import Evaluator

        res = Evaluator(data.ogb_name).eval({"y_true": y_true.view(-1, 1).cpu(),
                                             "y_pred": y_pred.view(-1, 1).cpu()})
        return float(res["acc"])
    return (y_true == y_pred).float().mean().item()

