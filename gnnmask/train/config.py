"""The run configuration: one flat, JSON-serialisable record of every choice.

Fields left at ``None`` are filled from the chosen method's ``defaults`` and
then from :data:`FALLBACKS` by :func:`resolve_config`, so the record a run
writes always holds the concrete values that were used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from gnnmask.errors import UserError

#: ``amsgrad``: Adam with the AMSGrad correction (Reddi et al. 2018), which
#: divides by the running maximum of the second-moment estimate, so steps
#: cannot grow when gradients shrink late in training.
OPTIMIZERS = ("adam", "adamw", "amsgrad", "sgd")
#: Learning-rate schedules: ``constant``, or ``cosine`` annealing from ``lr``
#: to 0 over ``epochs`` (Loshchilov & Hutter 2017, without restarts).
LR_SCHEDULES = ("constant", "cosine")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class RunConfig:
    # data
    dataset: str = "csbm"
    data_root: str | None = None
    split: int = 0
    # model
    model: str = "gcn"
    layers: int = 2
    hidden: int = 64
    dropout: float | None = None
    activation: str = "relu"
    norm: str = "none"
    residual: str = "none"
    bias: bool | None = None
    heads: int = 1
    # method
    method: str = "dense"
    sparsity: float | None = None
    mask_rule: str | None = None
    weight_init: str | None = None
    score_init: str | None = None
    schedule: str | None = None
    schedule_end: float | None = None
    # optimisation
    optimizer: str = "adam"
    lr: float = 0.01
    lr_schedule: str = "constant"
    weight_decay: float | None = None
    # clip the global L2 norm of the trained parameters' gradient to this
    # value before each step (None: no clipping)
    grad_clip: float | None = None
    # cross-entropy target (1 - eps) * one-hot + eps / classes (Szegedy et
    # al. 2016); bounds the logit margin the loss asks for
    label_smoothing: float = 0.0
    epochs: int = 200
    patience: int = 0
    # per-layer over-smoothing metrics of the final model: "default" (every
    # metric but the costly mad_gap), "all", "none" or a comma-separated list
    # of gnnmask.metrics.METRICS names
    layer_metrics: str = "default"
    # run
    seed: int = 0
    device: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise UserError(f"unknown config keys {unknown}; allowed: {sorted(names)}")
        return cls(**d)

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)


#: Values for fields still ``None`` after the method's defaults were applied.
FALLBACKS: dict[str, Any] = {
    "dropout": 0.5,
    "bias": True,
    "weight_decay": 5e-4,
}


def resolve_config(config: RunConfig) -> RunConfig:
    """Fill ``None`` fields from the method defaults, then validate everything."""
    from gnnmask.methods import get_method_class

    method_cls = get_method_class(config.method)
    values = config.to_dict()
    for key, value in {**FALLBACKS, **method_cls.defaults}.items():
        if values.get(key) is None:
            values[key] = value
    for key, value in FALLBACKS.items():
        if values.get(key) is None:
            values[key] = value
    resolved = RunConfig.from_dict(values)
    validate_config(resolved)
    return resolved


def validate_config(c: RunConfig) -> None:
    """Raise :class:`UserError` with one line for the first invalid field."""
    from gnnmask.models import MODELS

    if c.model not in MODELS:
        raise UserError(f"unknown model {c.model!r}; allowed: {', '.join(sorted(MODELS))}")
    if not isinstance(c.layers, int) or not 1 <= c.layers <= 128:
        raise UserError(f"--layers {c.layers!r} is out of range; allowed: an integer 1..128")
    if not isinstance(c.hidden, int) or c.hidden < 1:
        raise UserError(f"--hidden {c.hidden!r} is invalid; allowed: a positive integer")
    if c.heads < 1:
        raise UserError(f"--heads {c.heads!r} is invalid; allowed: a positive integer")
    if c.dropout is not None and not 0.0 <= c.dropout < 1.0:
        raise UserError(f"--dropout {c.dropout!r} is out of range; allowed: 0 <= dropout < 1")
    if c.sparsity is not None and not 0.0 <= c.sparsity < 1.0:
        raise UserError(f"--sparsity {c.sparsity!r} is out of range; allowed: 0 <= sparsity < 1")
    if c.schedule_end is not None and not 0.0 < c.schedule_end <= 1.0:
        raise UserError(
            f"--schedule-end {c.schedule_end!r} is out of range; allowed: 0 < fraction <= 1"
        )
    if c.optimizer not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {c.optimizer!r}; allowed: {', '.join(OPTIMIZERS)}")
    if c.lr_schedule not in LR_SCHEDULES:
        raise UserError(
            f"unknown lr schedule {c.lr_schedule!r}; allowed: {', '.join(LR_SCHEDULES)}"
        )
    if not c.lr > 0:
        raise UserError(f"--lr {c.lr!r} is invalid; allowed: a positive number")
    if c.weight_decay is not None and c.weight_decay < 0:
        raise UserError(f"--weight-decay {c.weight_decay!r} is invalid; allowed: >= 0")
    if c.grad_clip is not None and not c.grad_clip > 0:
        raise UserError(f"--grad-clip {c.grad_clip!r} is invalid; allowed: a positive number")
    if not 0.0 <= c.label_smoothing < 1.0:
        raise UserError(
            f"--label-smoothing {c.label_smoothing!r} is out of range; allowed: 0 <= eps < 1"
        )
    if not isinstance(c.epochs, int) or c.epochs < 1:
        raise UserError(f"--epochs {c.epochs!r} is invalid; allowed: a positive integer")
    if c.patience < 0:
        raise UserError(f"--patience {c.patience!r} is invalid; allowed: 0 (off) or more")
    if c.layer_metrics not in ("default", "all", "none"):
        from gnnmask.metrics import METRICS

        bad = [m for m in c.layer_metrics.split(",") if m not in METRICS]
        if bad:
            raise UserError(
                f"--layer-metrics {bad[0]!r} is unknown; allowed: default, all, none or a "
                f"comma-separated "
                f"list of {', '.join(METRICS)}"
            )
    if c.device not in DEVICES and not str(c.device).startswith("cuda:"):
        raise UserError(f"unknown device {c.device!r}; allowed: auto, cpu, cuda, cuda:N")
