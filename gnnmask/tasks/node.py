"""Node classification: the backbone's outputs are the nodes' class logits."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from gnnmask.data import evaluate_accuracy, load_dataset
from gnnmask.tasks.base import Objective, Task, predicted_classes, register_task


@register_task
class NodeTask(Task):
    """Node classification: cross-entropy on the training nodes, accuracy per split.

    The split is the dataset's (:func:`gnnmask.data.load_dataset`); mini-batches
    (``--batch-size``) are training nodes with sampled neighbourhoods."""

    name = "node"
    metric = "acc"

    def load(self, config):
        c = config
        return load_dataset(c.dataset, root=c.data_root, split=c.split, seed=c.seed)

    def train_size(self, data) -> int:
        return int(data.train_mask.sum())

    def loss(self, model: nn.Module, out: Tensor, data, split: str = "train") -> Tensor:
        """Cross-entropy of ``split``'s nodes (training: this rank's share
        under ``--distributed``, with ``--label-smoothing``)."""
        mask = getattr(data, f"{split}_mask")
        if split == "train":
            mask = getattr(data, "rank_train_mask", mask)
        smoothing = self.config.label_smoothing if split == "train" else 0.0
        return F.cross_entropy(out[mask].float(), data.y[mask], label_smoothing=smoothing)

    def batch_loss(self, model: nn.Module, out: Tensor, batch) -> Tensor:
        """Cross-entropy of a sampled mini-batch's seed nodes (its first
        ``batch_size`` nodes)."""
        n = batch.batch_size
        return F.cross_entropy(out[:n].float(), batch.y[:n],
                               label_smoothing=self.config.label_smoothing)

    def objective(self, data) -> Objective:
        mask, y = data.train_mask, data.y
        return Objective(logits=lambda m, inputs: m(*inputs)[mask],
                         loss=lambda logits: F.cross_entropy(logits, y[mask]))

    def evaluate(self, model: nn.Module, out: Tensor, data):
        val_loss = float(F.cross_entropy(out[data.val_mask], data.y[data.val_mask]))
        pred = out.argmax(dim=-1)
        return {f"{split}_acc": evaluate_accuracy(data, pred, getattr(data, f"{split}_mask"))
                for split in ("train", "val", "test")}, val_loss

    def predictions(self, out: Tensor, data):
        return {"predicted_classes": predicted_classes(out.argmax(dim=-1), data)}
