"""The interface every training method implements.

A method is a small strategy object. The engine (:mod:`gnnmask.train`) owns the
loop; a method only decides

* how the freshly built model is prepared (e.g. masks attached, weights frozen),
* which tensors the optimiser updates, and what the model is called with
  (e.g. a pruned graph with learnt edge weights),
* how many training phases it needs (iterative pruning: a round of training,
  pruning and rewinding per sparsity level) and what happens between them,
* what happens around each optimisation step (sparsity schedules, pruning,
  regrowth, ...), and
* what it reports per epoch and exports at the end.

Adding a method never requires touching the engine: subclass :class:`Method`,
give it a unique ``name`` and register it with :func:`register_method`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from gnnmask.errors import UserError
from gnnmask.registry import Registry, first_sentence


@dataclass(frozen=True)
class Phase:
    """One training run of a method: ``config.epochs`` epochs from a fresh
    optimiser, ending with the best validation state restored. ``reported``
    phases become entries of the record's ``rounds``."""

    round: int = 0
    name: str = "train"
    reported: bool = True


@dataclass(frozen=True)
class Context:
    """What the engine tells a method about the run it is part of, instead of
    the method reading the engine's internals.

    Attributes:
        steps_per_epoch: optimiser steps this process takes per epoch (1 for
            full-batch training; with mini-batches, the batches of this
            process's share of the training nodes).
        world_size: processes training together (``--distributed``).
        objective: the task's training objective
            (:class:`gnnmask.tasks.Objective`: ``logits(model, inputs)`` and
            ``loss(logits)``) for methods that score weights by a loss;
            ``None``: node classification's cross-entropy on
            ``data.train_mask``.
    """

    steps_per_epoch: int = 1
    world_size: int = 1
    objective: Any = None


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


#: ``{kind: (test, what is allowed)}`` of the values an :class:`Option` takes.
OPTION_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "positive_int": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                     "a positive integer"),
    "positive": (lambda v: _number(v) and v > 0, "a number > 0"),
    "nonnegative": (lambda v: _number(v) and v >= 0, "a number >= 0"),
    "rate": (lambda v: _number(v) and 0 < v < 1, "a fraction 0 < x < 1"),
    "fraction": (lambda v: _number(v) and 0 < v <= 1, "a fraction 0 < x <= 1"),
    "bool": (lambda v: isinstance(v, bool), "true, false"),
    "globs": (lambda v: isinstance(v, str) or (isinstance(v, list) and all(
        isinstance(g, str) for g in v)), "a glob or a JSON list of globs"),
    "sparsities": (lambda v: isinstance(v, list) and all(_number(x) and 0 < x < 1 for x in v),
                   "a JSON list of sparsities between 0 and 1"),
    "choice": (lambda v: True, ""),  # checked against Option.choices
}


@dataclass(frozen=True)
class Option:
    """One ``--extra KEY=VALUE`` option a method reads: what it does, the kind
    of value it takes (a key of :data:`OPTION_KINDS`, or ``"choice"`` among
    ``choices``) and its default. Its bounds are stated here once:
    :meth:`Method.check_config` checks every given value against them before
    any training, and :meth:`Method.extra` reads the value or the default.

    ``default=None`` means the default depends on other settings (``doc``
    says how)."""

    doc: str
    kind: str
    default: Any = None
    choices: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind not in OPTION_KINDS:
            raise ValueError(f"unknown option kind {self.kind!r}; allowed: "
                             f"{', '.join(OPTION_KINDS)}")

    @property
    def allowed(self) -> str:
        return ", ".join(self.choices) if self.kind == "choice" else OPTION_KINDS[self.kind][1]

    def check(self, key: str, value, method: str) -> None:
        """Raise :class:`~gnnmask.errors.UserError` naming ``value`` and what is
        allowed when ``value`` is not of this option's kind."""
        test = OPTION_KINDS[self.kind][0]
        if not test(value) or (self.kind == "choice" and value not in self.choices):
            raise UserError(f"--extra {key}={value!r} is invalid for method {method!r}; "
                            f"allowed: {self.allowed}")

    def __str__(self) -> str:
        default = "" if self.default is None else f" (default {_show(self.default)})"
        return f"{self.doc}{default}; allowed: {self.allowed}"


def _show(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class Method:
    """Base class of all training methods (dense training is the identity case).

    Attributes:
        name: the registry key, used on the command line (``--method NAME``).
        defaults: values this method gives to unset (``None``) fields of the
            run configuration, e.g. ``{"dropout": 0.0, "bias": False}``.
        reads: the method-specific run-config fields it reads
            (:data:`~gnnmask.train.config.METHOD_FIELDS`); a value given for
            any other is refused.
        options: ``{key: Option}``: the ``config.extra`` options it reads,
            with their kinds and defaults; any other key is refused.
        masks: whether the prepared model carries masks (and so has a ticket).
        iterative: whether one run passes through several sparsities (one
            reported phase each), which a sparsity sweep reads from its
            ``rounds`` instead of running each sparsity.
        trains_weights: whether the optimiser updates the network's weights
            (not, for mask-only methods).
    """

    name: ClassVar[str] = "base"
    defaults: ClassVar[dict[str, Any]] = {}
    reads: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[dict[str, Option]] = {}
    masks: ClassVar[bool] = False
    iterative: ClassVar[bool] = False
    trains_weights: ClassVar[bool] = True

    def __init__(self, config, context: Context | None = None):
        self.config = config
        #: What the engine tells the method about the run (:class:`Context`).
        self.context = context or Context()

    @classmethod
    def check_config(cls, config) -> None:
        """Raise :class:`~gnnmask.errors.UserError` for an ``extra`` key this
        method does not read, or a value outside its :class:`Option` (before
        any training; the configuration refuses the method-specific fields it
        does not read, :attr:`reads`). Subclasses may check more here."""
        unknown = sorted(set(config.extra) - set(cls.options))
        if unknown:
            raise UserError(f"unknown --extra key {unknown[0]!r} for method {cls.name!r}; "
                            f"allowed: {', '.join(sorted(cls.options)) or 'none'}")
        for key, value in config.extra.items():
            cls.options[key].check(key, value, cls.name)

    def extra(self, key: str, default: Any = None):
        """The ``--extra`` option ``key``: its given value, else its
        :class:`Option` default (else ``default``, for options whose default
        depends on other settings)."""
        if key in self.config.extra:
            return self.config.extra[key]
        declared = self.options[key].default
        return default if declared is None else declared

    @classmethod
    def summary(cls) -> str:
        """The first sentence of the method's docstring."""
        return first_sentence(cls.__doc__) or cls.name

    # -- set-up ---------------------------------------------------------------
    def prepare(self, model: nn.Module, data) -> nn.Module:
        """Return the model to train (may modify ``model`` in place)."""
        return model

    def parameters(self, model: nn.Module) -> Iterable[torch.Tensor] | list[dict]:
        """Tensors (or optimiser parameter groups) the optimiser updates."""
        return [p for p in model.parameters() if p.requires_grad]

    def inputs(self, data) -> tuple:
        """What the model is called with: ``model(*method.inputs(data))``
        (``data.features``: the features as the engine hands them to the
        model, see :func:`gnnmask.train.engine.model_features`)."""
        return features(data), data.edge_index

    # -- phases ---------------------------------------------------------------
    def phases(self) -> list[Phase]:
        """The training phases, in order (one by default)."""
        return [Phase()]

    def start_phase(self, phase: Phase, model: nn.Module, data) -> None:
        """Called before each phase (e.g. prune and rewind before a round)."""

    def end_phase(self, phase: Phase, model: nn.Module) -> None:
        """Called after each phase, with its best state restored, before the
        phase's model is evaluated and reported."""

    @contextlib.contextmanager
    def evaluating(self, model: nn.Module):
        """Context around every evaluation pass of the engine (e.g. masks
        evaluated at the target sparsity during a ramp)."""
        yield

    def state(self) -> dict[str, Any]:
        """Method state kept with the best model of a phase (e.g. learnt edge
        masks that live outside the model); restored by :meth:`load_state`."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned."""

    # -- around each step -----------------------------------------------------
    def on_epoch_start(self, epoch: int, model: nn.Module) -> None:
        """Called before the training step of ``epoch`` (0-based)."""

    def penalty(self, model: nn.Module) -> torch.Tensor | None:
        """An extra term added to the training loss (e.g. an L0 penalty)."""
        return None

    def after_backward(self, epoch: int, model: nn.Module) -> None:
        """Called after ``loss.backward()``, before the optimiser step."""

    def after_step(self, epoch: int, model: nn.Module, optimizer) -> None:
        """Called after the optimiser step."""

    def selectable(self, epoch: int) -> bool:
        """Whether the model after ``epoch`` may be chosen as the final model
        (e.g. only once a sparsity schedule has reached its target)."""
        return True

    # -- reporting ------------------------------------------------------------
    def epoch_info(self, model: nn.Module) -> dict[str, Any]:
        """Extra per-epoch values for the run record (e.g. current sparsity)."""
        return {}

    def export(self, model: nn.Module) -> dict[str, Any]:
        """Final method-specific summary for the run record."""
        return {}

    def finalize(self, model: nn.Module, path_prefix: str | None = None) -> None:
        """Called once after training with the best model restored."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def features(data):
    """``data.features`` where the engine set it, else ``data.x``."""
    return data.features if "features" in data else data.x


METHODS: Registry = Registry("method")


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator adding a :class:`Method` subclass to :data:`METHODS`."""
    return METHODS.register(cls)
