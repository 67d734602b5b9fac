"""Graph classification: node outputs pooled per graph into class logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

from gnnmask.data import get_info
from gnnmask.data.graphs import graph_split, load_graphs, union
from gnnmask.errors import UserError
from gnnmask.metrics.evaluation import auroc
from gnnmask.registry import Registry, resolve
from gnnmask.tasks.base import Objective, Task, predicted_classes, register_task

#: Readouts: node outputs ``[N, C]`` -> one row per graph ``[G, C]``.
READOUTS = Registry("--readout", {"mean": global_mean_pool, "sum": global_add_pool,
                                  "max": global_max_pool})


def is_graph_data(data) -> bool:
    return isinstance(data, Batch) and all(
        getattr(data, k, None) is not None for k in ("train_mask", "val_mask", "test_mask")) \
        and data.train_mask.numel() == data.num_graphs


@register_task
class GraphTask(Task):
    """Graph classification: the backbone's node outputs pooled per graph
    (``--readout`` mean, sum or max) are the class logits; cross-entropy on
    the training graphs; accuracy (ROC-AUC for OGB's binary molecule
    datasets, by OGB's ``Evaluator``).

    The dataset is the disjoint union of its graphs
    (:func:`gnnmask.data.graphs.load_graphs`; ``sbm-graphs``, generated, by
    default). Full-batch training (``--batch-size 0``) passes over the whole
    union once per step; ``--batch-size B`` takes shuffled mini-batches of B
    training graphs through PyG's ``DataLoader``. Layer metrics are computed
    per graph and averaged over the test graphs."""

    name = "graph"
    metric = "acc"
    reads = ("readout",)
    default_dataset = "sbm-graphs"

    @classmethod
    def metric_for(cls, dataset: str) -> str:
        """``rocauc`` for OGB graph datasets (their official metric), else ``acc``."""
        return "rocauc" if str(dataset).startswith("ogbg-") else "acc"

    @classmethod
    def check_config(cls, config) -> None:
        if config.readout is not None and config.readout not in READOUTS:
            raise UserError(f"unknown --readout {config.readout!r}; allowed: "
                            f"{', '.join(READOUTS)}")
        if config.edge_sparsity is not None or config.method == "ugs":
            raise UserError(f"--method {config.method} with a graph mask learns one mask over "
                            "one graph's edges; --task graph classifies graphs it has not "
                            "seen; allowed with --task graph: weight-only methods (no "
                            "--edge-sparsity)")

    @staticmethod
    def fill(values: dict) -> None:
        values["readout"] = values.get("readout") or "mean"

    def __init__(self, config):
        super().__init__(config)
        self.metric = self.metric_for(config.dataset)
        self.pool = resolve(READOUTS, config.readout or "mean")

    def load(self, config):
        c = config
        return load_graphs(get_info(c.dataset), c.data_root, split=c.split, seed=c.seed)

    def adopt(self, data):
        """A list of ``Data`` graphs of one's own (one label each in ``y``) is
        split 80/10/10 from the run's seed and split."""
        if is_graph_data(data):
            return data
        if isinstance(data, (list, tuple)) and data and all(isinstance(g, Data) for g in data):
            bad = [i for i, g in enumerate(data) if getattr(g, "y", None) is None
                   or g.y.numel() != 1]
            if bad:
                raise UserError(f"graph {bad[0]} has no single label in y; allowed: one class "
                                "index per graph (y of one element)")
            ys = torch.cat([g.y.view(-1) for g in data])
            return union(list(data), graph_split(len(data), self.config.seed,
                                                 self.config.split),
                         self.config.dataset, int(ys.max()) + 1)
        raise UserError(f"data {type(data).__name__} is invalid for --task graph; allowed: a "
                        "list of torch_geometric Data graphs or load_graphs' union")

    def stats(self, data) -> dict[str, int]:
        return {"graphs": int(data.num_graphs), "nodes": int(data.num_nodes),
                "edges": int(data.edge_index.size(1)), "features": int(data.num_features),
                "classes": int(data.num_classes)}

    def train_size(self, data) -> int:
        return int(data.train_mask.sum())

    def loader(self, data, batch_size: int, seed: int):
        if not batch_size:
            return None
        graphs = data.index_select(data.train_mask.nonzero().view(-1).cpu())
        gen = torch.Generator().manual_seed(int(seed))
        return DataLoader(graphs, batch_size=batch_size, shuffle=True, generator=gen)

    def pooled(self, out: Tensor, batch) -> Tensor:
        return self.pool(out, batch.batch, size=batch.num_graphs)

    def batch_loss(self, model: nn.Module, out: Tensor, batch) -> Tensor:
        return F.cross_entropy(self.pooled(out, batch).float(), batch.y.view(-1),
                               label_smoothing=self.config.label_smoothing)

    def loss(self, model: nn.Module, out: Tensor, data, split: str = "train") -> Tensor:
        mask = getattr(data, f"{split}_mask")
        smoothing = self.config.label_smoothing if split == "train" else 0.0
        return F.cross_entropy(self.pooled(out, data)[mask].float(), data.y[mask],
                               label_smoothing=smoothing)

    def objective(self, data) -> Objective:
        mask, y = data.train_mask, data.y
        return Objective(logits=lambda m, inputs: self.pooled(m(*inputs), data)[mask],
                         loss=lambda logits: F.cross_entropy(logits, y[mask]))

    def evaluate(self, model: nn.Module, out: Tensor, data):
        logits = self.pooled(out.float(), data)
        val_loss = float(F.cross_entropy(logits[data.val_mask], data.y[data.val_mask]))
        result = {}
        for split in ("train", "val", "test"):
            mask = getattr(data, f"{split}_mask")
            result[f"{split}_{self.metric}"] = self._score(data, logits[mask], data.y[mask])
        return result, val_loss

    def predictions(self, out: Tensor, data):
        pred = self.pooled(out.float(), data).argmax(dim=-1)
        return {"predicted_classes": predicted_classes(pred, data)}

    def _score(self, data, logits: Tensor, y: Tensor) -> float:
        if self.metric == "acc":
            return float((logits.argmax(dim=-1) == y).double().mean())
        positive = logits.softmax(dim=-1)[:, 1]
        if getattr(data, "ogb_name", None):
            from ogb.graphproppred import Evaluator

            res = Evaluator(data.ogb_name).eval({"y_true": y.view(-1, 1).cpu(),
                                                 "y_pred": positive.view(-1, 1).cpu()})
            return float(res["rocauc"])
        return auroc(positive, y.bool())

    def trace_groups(self, data) -> Tensor:
        """The test graphs' nodes by graph (-1: the other graphs' nodes)."""
        return torch.where(data.test_mask[data.batch], data.batch,
                           torch.full_like(data.batch, -1))
