"""The interface every learning task implements.

A task is the one axis of the engine that says *what is predicted*: it
supplies the split, the head on top of the backbone's node outputs, the loss
and the metrics. The engine owns the loop and calls the task; methods never
know which task they train (the pruners that score weights by a loss get it
from the engine as an :class:`Objective`).

Every task works on the backbone's node outputs ``out = model(*inputs)``,
``[N, C]``:

* ``node``: ``out`` are the class logits of the nodes;
* ``link``: ``out`` are node embeddings, scored in pairs by a decoder;
* ``graph``: ``out`` are pooled per graph (a readout) into class logits.

Records hold ``{train,val,test}_<metric>`` of the task's :attr:`Task.metric`
(``acc``, ``auc``, ``rocauc``) and name it (``record["metric"]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from gnnmask.errors import UserError
from gnnmask.registry import Registry, first_sentence, resolve

#: Run-config fields that only some tasks read (``Task.reads``); a value given
#: for a task that does not read it is refused.
TASK_FIELDS = ("decoder", "readout", "hits_k", "link_loss")


@dataclass(frozen=True)
class Objective:
    """The training objective as the pruners at initialisation need it:
    ``logits(model, inputs)`` runs the model on ``inputs`` (what the method
    gives it) and returns the task's training logits, ``loss(logits)`` the
    training loss of those logits (e.g. GraSP scales the logits by a
    temperature in between)."""

    logits: Callable[[nn.Module, tuple], Tensor]
    loss: Callable[[Tensor], Tensor]


class Task:
    """Base class of the learning tasks.

    Attributes:
        name: the registry key (``--task NAME``).
        metric: the primary metric; records hold ``train_/val_/test_<metric>``
            and ``--select val_<metric>`` selects by it.
        reads: the task-specific run-config fields it reads
            (:data:`TASK_FIELDS`); a value given for any other is refused
            (:func:`check_task_fields`, which also refuses the node-only
            settings for the other tasks); :meth:`fill` sets their defaults.
        default_dataset: the dataset of a run that names none.
    """

    name: ClassVar[str] = "base"
    metric: ClassVar[str] = "acc"
    reads: ClassVar[tuple[str, ...]] = ()
    default_dataset: ClassVar[str] = "csbm"

    def __init__(self, config):
        self.config = config

    @classmethod
    def summary(cls) -> str:
        return first_sentence(cls.__doc__) or cls.name

    @classmethod
    def check_config(cls, config) -> None:
        """Raise :class:`~gnnmask.errors.UserError` for a setting this task
        cannot honour (before any data is loaded)."""

    @staticmethod
    def fill(values: dict) -> None:
        """Fill the task's unset fields in the config ``values`` (resolved
        ``dataset`` included) with its defaults."""

    @classmethod
    def metric_for(cls, dataset: str) -> str:
        """The primary metric on ``dataset``."""
        return cls.metric

    # -- data -----------------------------------------------------------------
    def load(self, config):
        """The task's data for ``config`` (loaded and split from its seed)."""
        raise NotImplementedError

    def adopt(self, data):
        """``data`` a user hands :func:`gnnmask.train.train`, made ready for
        this task (e.g. split), or a :class:`UserError` saying what is needed."""
        return data

    def dataset_name(self, data) -> str | None:
        """The registry name ``data`` carries, if any."""
        return getattr(data, "name", None)

    def stats(self, data) -> dict[str, int]:
        """The record's ``dataset_stats``."""
        return {"nodes": int(data.num_nodes), "edges": int(data.edge_index.size(1)),
                "features": int(data.num_features), "classes": int(data.num_classes)}

    def train_size(self, data) -> int:
        """Training examples per epoch (nodes, edges or graphs)."""
        raise NotImplementedError

    # -- model ----------------------------------------------------------------
    def out_channels(self, data, hidden: int) -> int:
        """Width of the backbone's node outputs."""
        return int(data.num_classes)

    def attach_head(self, model: nn.Module, data) -> nn.Module:
        """Add the task's trainable head as ``model.head`` (if it has one) before
        the method prepares the model, so masks and optimisers see it."""
        return model

    # -- training -------------------------------------------------------------
    def loader(self, data, batch_size: int, seed: int) -> Iterable | None:
        """Mini-batches of one epoch (``None``: full-batch)."""
        return None

    def batch_loss(self, model: nn.Module, out: Tensor, batch) -> Tensor:
        """The training loss of a mini-batch from :meth:`loader`."""
        raise NotImplementedError

    def loss(self, model: nn.Module, out: Tensor, data, split: str = "train") -> Tensor:
        """The loss of ``split`` given the node outputs of the whole ``data``."""
        raise NotImplementedError

    def objective(self, data) -> Objective:
        """The training loss for pruners that score at initialisation."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, out: Tensor, data) -> tuple[dict[str, float], float]:
        """``({train,val,test}_<metric> [, extra metrics]}, val_loss)`` from
        the node outputs of the whole ``data`` in eval mode."""
        raise NotImplementedError

    def predictions(self, out: Tensor, data) -> dict:
        """Extra record fields that describe the final predictions themselves
        (``{}``: none). Classification tasks give ``predicted_classes``, the
        number of distinct classes predicted on each split, so a report can
        tell a network that predicts one class for every node apart from one
        that learnt something."""
        return {}

    # -- over-smoothing -------------------------------------------------------
    def trace_groups(self, data) -> Tensor | None:
        """Node -> graph index when the layer metrics are per graph, else None."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def predicted_classes(pred: Tensor, data) -> dict[str, int]:
    """``{split: number of distinct classes in pred[split_mask]}`` for the
    training, validation and test splits (1: one class for every example)."""
    return {split: int(pred[getattr(data, f"{split}_mask")].unique().numel())
            for split in ("train", "val", "test")}


TASKS: Registry = Registry("--task")


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator adding a :class:`Task` subclass to :data:`TASKS`."""
    return TASKS.register(cls)


def get_task_class(name) -> type[Task]:
    """The task registered as ``name`` (one-line error naming the allowed ones)."""
    return resolve(TASKS, name)


def check_task_fields(config) -> None:
    """Refuse a task-specific field the task does not read and a node-only
    setting for another task."""
    cls = get_task_class(config.task)
    for name in TASK_FIELDS:
        if getattr(config, name) is not None and name not in cls.reads:
            users = [t for t, c in TASKS.items() if name in c.reads]
            raise UserError(f"--{name.replace('_', '-')} is not read by --task {cls.name}; "
                            f"allowed with: --task {', --task '.join(users)}")
    if cls.name != "node":
        node_only = {"evaluations": "none", "holdout_classes": 0.0, "distributed": False,
                     "num_neighbors": "10"}
        for name, off in node_only.items():
            if getattr(config, name) != off:
                raise UserError(f"--{name.replace('_', '-')} {getattr(config, name)!r} is "
                                f"only read by --task node; allowed with --task {cls.name}: "
                                f"the default ({off})")
        if config.rescale_init and config.rescale_rule == "gradinit":
            raise UserError(f"--rescale-rule gradinit fits node classification's loss; allowed "
                            f"with --task {cls.name}: lsuv")
    cls.check_config(config)
