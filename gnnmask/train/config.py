"""The run configuration: one flat, JSON-serialisable record of every choice.

Each field carries its command-line help and, where it names something from a
registry, that registry (``choices``): the ``gnnmask`` command line derives
its flags from these fields, and :func:`validate_config` checks names against
the same registries, so the two never disagree.

Fields left at ``None`` are filled from the chosen model's own ``defaults``
(:attr:`~gnnmask.models.DeepGNN.defaults`, e.g. SGC's dropout 0), else the
chosen method's ``defaults``, else :data:`FALLBACKS`, by
:func:`resolve_config`, so the record a run
writes always holds the concrete values that were used. Method-specific
fields (:data:`METHOD_FIELDS`) and ``extra`` options are refused for a method
that does not read them (``Method.reads`` / ``Method.options``): nothing given
is silently ignored.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from gnnmask.data import DATASETS, check_root, dataset_of, get_info
from gnnmask.data.sampling import parse_fanout
from gnnmask.errors import UserError
from gnnmask.masks import DISTRIBUTIONS, RULES, SCHEDULES, SCORE_INITS
from gnnmask.masks.init import SPARSE_INITS, WEIGHT_INITS
from gnnmask.methods import METHODS, get_method_class
from gnnmask.metrics import METRICS
from gnnmask.metrics.evaluation import EVALUATIONS
from gnnmask.models import ACTIVATIONS, MODELS, NORMS, RESIDUALS, get_model_class
from gnnmask.models.deep import MAX_LAYERS, check_shape
from gnnmask.presets import PRESETS, get_preset
from gnnmask.tasks import (
    DECODERS,
    LINK_LOSSES,
    READOUTS,
    TASKS,
    check_task_fields,
    get_task_class,
)
from gnnmask.train.optim import LR_SCHEDULES, OPTIMIZERS
from gnnmask.train.tricks import check_tricks


def _rules():
    return tuple(name for name, rule in RULES.items() if not rule.fixed)


def _weight_inits():
    return tuple(dict.fromkeys([*WEIGHT_INITS, *SPARSE_INITS]))


def _opt(default, group: str, help: str, choices=None, **kw):
    """A field with its command-line group, help and choices: a registry (read
    when a value is checked, so entries registered later count) or a function
    returning the allowed names."""
    if choices is not None and not callable(choices):
        registry = choices
        choices = lambda: tuple(registry)  # noqa: E731
    return field(default=default, metadata=dict(group=group, help=help, choices=choices), **kw)


@dataclass
class RunConfig:
    # data
    task: str = _opt("node", "data", "what is predicted: node (classification), link "
                     "(prediction) or graph (classification)", TASKS)
    dataset: str | None = _opt(None, "data", "dataset name (see `gnnmask datasets`; default: "
                               "csbm, and sbm-graphs for --task graph)")
    data_root: str | None = _opt(None, "data", "data root (default: $GNNMASK_DATA, else "
                                 "./datasets)")
    split: int = _opt(0, "data", "split number (geom-gcn splits: 0-9)")
    # model
    model: str = _opt("gcn", "model", "GNN backbone", MODELS)
    layers: int = _opt(2, "model", f"message-passing layers, 1..{MAX_LAYERS}")
    hidden: int = _opt(64, "model", "hidden width")
    dropout: float | None = _opt(None, "model", "dropout probability before each layer (sgc: on "
                                  "the propagated features)")
    activation: str = _opt("relu", "model", "activation between layers", ACTIVATIONS)
    norm: str = _opt("none", "model", "normalisation after each hidden layer", NORMS)
    residual: str = _opt("none", "model", "residual connection", RESIDUALS)
    bias: bool | None = _opt(None, "model", "layers have biases (true/false)")
    heads: int = _opt(1, "model", "attention heads of hidden gat layers")
    output_heads: int = _opt(1, "model", "gat: attention heads of the output layer, averaged "
                             "(the GAT paper: 1; 8 on PubMed)")
    alpha: float = _opt(0.1, "model", "initial-residual / teleport weight (residual initial, "
                        "gcnii, appnp)")
    theta: float = _opt(0.5, "model", "gcnii: strength of the identity mapping, beta_l = "
                        "log(theta / l + 1) (the GCNII paper's lambda)")
    jk: str = _opt("cat", "model", "jknet: aggregation of the layers' outputs (cat, max, "
                   "lstm)", lambda: get_model_class("jknet").choices["jk"])
    jk_dropout: str = _opt("inputs", "model", "jknet: where dropout acts: inputs (before every "
                           "convolution, the raw features included, and on the aggregation) "
                           "or outputs (after every layer's activation, one draw for the next "
                           "layer and the aggregation: PyG's and the Bag of Tricks code's)",
                           lambda: get_model_class("jknet").choices["jk_dropout"])
    degree: str = _opt("in", "model", "gcn: whose degree normalises the propagation under "
                       "directed or asymmetric edge weights: in (PyG's gcn_norm) or out (the "
                       "row sums of the weighted adjacency, as the UGS code)",
                       lambda: get_model_class("gcn").choices["degree"])
    conv_init: str = _opt("glorot", "model", "gcnii: initialisation of the convolution "
                          "weights: glorot (PyG's GCN2Conv) or uniform (U(-b, b), b = 1 / "
                          "sqrt(width), the GCNII code's)",
                          lambda: get_model_class("gcnii").choices["conv_init"])
    aggr: str = _opt("sum", "model", "gin: neighbourhood aggregation (sum: GIN's; mean: the "
                     "untrained-tickets code's)", lambda: get_model_class("gin").choices["aggr"])
    attention_dropout: float = _opt(0.0, "model", "gat: dropout on the normalised attention "
                                    "coefficients in training (the GAT paper: 0.6)")
    gat_dropout: str = _opt("inputs", "model", "gat: where dropout acts: inputs (one draw on "
                            "each layer's input, shared by the heads: PyG's GAT example) or "
                            "heads (each head drops its own copy of the input and its "
                            "transformed features again before aggregating: the GAT code's)",
                            lambda: get_model_class("gat").choices["gat_dropout"])
    # task heads
    decoder: str | None = _opt(None, "task", "link: how node pairs are scored (dot: inner "
                               "product; cosine: cosine similarity / 0.1, scale-free, for "
                               "mask-only methods; mlp: an MLP on z_u * z_v)", DECODERS)
    hits_k: int | None = _opt(None, "task", "link: the K of the recorded test_hits@K "
                              "(default 20; 50 on ogbl-* datasets, OGB's metric)")
    link_loss: str | None = _opt(None, "task", "link: sampled (binary cross-entropy against "
                                 "one non-edge sampled per training edge each step, the "
                                 "default) or gae (the graph auto-encoder's weighted "
                                 "reconstruction of the whole adjacency; up to 30,000 nodes)",
                                 LINK_LOSSES)
    readout: str | None = _opt(None, "task", "graph: pooling of the node outputs per graph "
                               "(mean, sum, max)", READOUTS)
    # method
    method: str = _opt("dense", "method", "training method (see `gnnmask methods`)", METHODS)
    sparsity: float | None = _opt(None, "method", "weight sparsity: the fraction of the "
                                  "weights that are zero, 0 <= s < 1 (density 1 - s)")
    mask_rule: str | None = _opt(None, "method", "how masks are chosen from scores", _rules)
    weight_init: str | None = _opt(None, "method", "weight initialisation: of the frozen "
                                   "weights (mask-only methods) or of the kept trainable "
                                   "weights (sparse methods)", _weight_inits)
    score_init: str | None = _opt(None, "method", "score initialisation", SCORE_INITS)
    schedule: str | None = _opt(None, "method", "sparsity schedule", SCHEDULES)
    schedule_end: float | None = _opt(None, "method", "fraction of training over which the "
                                      "sparsity schedule ramps")
    density_dist: str | None = _opt(None, "method", "layer-wise densities of sparse training "
                                    "(erk: Erdős–Rényi-Kernel; global: one threshold)",
                                    DISTRIBUTIONS)
    rewind_epoch: int | None = _opt(None, "method", "iterative pruning rewinds the weights to "
                                    "those after this many epochs of the first round (0: the "
                                    "initialisation)")
    edge_sparsity: float | None = _opt(None, "method", "graph sparsity of graph lottery "
                                       "tickets: the fraction of the edges removed at the "
                                       "end")
    itop: bool | None = _opt(None, "method", "dynamic sparse training: the in-time "
                             "over-parameterisation recipe (true/false)")
    # optimisation
    optimizer: str = _opt("adam", "optimisation", "optimiser", OPTIMIZERS)
    lr: float = _opt(0.01, "optimisation", "learning rate")
    lr_schedule: str = _opt("constant", "optimisation", "learning-rate schedule (cosine: "
                            "anneal to 0 over the epochs)", LR_SCHEDULES)
    weight_decay: float | None = _opt(None, "optimisation", "weight decay (L2)")
    conv_weight_decay: float | None = _opt(None, "optimisation", "weight decay of the "
                                           "message-passing layers instead of "
                                           "--weight-decay, which then decays the linear "
                                           "input and output layers (gcnii: its paper's "
                                           "code uses 0.01 and 5e-4)")
    grad_clip: float | None = _opt(None, "optimisation", "clip the global L2 norm of the "
                                   "trained tensors' gradient to this value before each step "
                                   "(default: no clipping)")
    label_smoothing: float = _opt(0.0, "optimisation", "cross-entropy against (1-eps) "
                                  "one-hot + eps/classes (Szegedy et al. 2016)")
    epochs: int = _opt(200, "optimisation", "training epochs")
    batch_size: int = _opt(0, "optimisation", "mini-batches of this many training nodes with "
                           "sampled neighbourhoods (0: full-batch)")
    num_neighbors: str = _opt("10", "optimisation", "mini-batches: neighbours sampled per node "
                              "and layer, one value or one per layer (-1: all)")
    drop_edge: float = _opt(0.0, "optimisation", "DropEdge (Rong et al. 2020): drop this "
                            "fraction of the undirected edges anew at every training step")
    drop_node: float = _opt(0.0, "optimisation", "DropNode: drop this fraction of the nodes' "
                            "edges anew at every training step (PyG's dropout_node)")
    # training tricks for sparse networks (gnnmask.train.tricks, the ToST recipe)
    ghost_soft: int = _opt(0, "tricks", "ghost soft neurons: anneal SiLU to ReLU over the "
                           "first N epochs (0: off)")
    ghost_skip: int = _opt(0, "tricks", "ghost skip connections: an identity skip phased out "
                           "over the first N epochs (0: off)")
    ghost_form: str = _opt("identity", "tricks", "ghost skips: identity (phased out) or "
                           "branch (trainable 1e-4 branches of the ToST code, dropped at "
                           "epoch K)", lambda: ("identity", "branch"))
    rescale_init: int = _opt(0, "tricks", "layer-wise rescaled initialisation: learn one "
                             "scale per weight tensor for N steps before training (0: off)")
    rescale_rule: str = _opt("lsuv", "tricks", "rescaling of --rescale-init: lsuv (unit "
                             "output std per layer) or gradinit (the ToST code's GradInit)",
                             lambda: ("lsuv", "gradinit"))
    patience: int = _opt(0, "optimisation", "stop after this many epochs without a better "
                         "validation score (--select) (0: off)")
    select: str | None = _opt(None, "optimisation", "the final model is the epoch with the "
                              "best val_<metric> (the task's: val_acc, val_auc for link, "
                              "val_rocauc for ogbg-*; the default), val_loss (lowest "
                              "validation loss, as the GCNII and DAGNN code select) or "
                              "val_acc_and_loss (the GAT code's rule: keep an epoch at "
                              "least as good as the best so far on both; patience counts "
                              "epochs better on neither)",
                              lambda: ("val_acc", "val_auc", "val_rocauc", "val_loss",
                                       "val_acc_and_loss"))
    grad_flow_every: int = _opt(0, "optimisation", "record the gradient norm per trained "
                                "tensor at initialisation and every N epochs (0: off)")
    trace_every: int = _opt(0, "optimisation", "record the per-layer metrics of "
                            "--layer-metrics (its default set when that is none) at "
                            "initialisation and every N epochs (0: off)")
    evaluations: str = _opt("none", "evaluation", "evaluations of the final model beyond "
                            "accuracy: none, all or a comma-separated list of calibration, "
                            "robustness, ood")
    holdout_classes: float = _opt(0.0, "evaluation", "leave this fraction of the classes out "
                                  "of training and validation (out-of-distribution test nodes "
                                  "for the ood evaluation)")
    holdout_rounding: str = _opt("ceil", "evaluation", "classes held out: ceil(F * C) or "
                                 "floor(F * C) (the untrained-tickets code; at least 1 either "
                                 "way)", lambda: ("ceil", "floor"))
    calibration_bins: int = _opt(15, "evaluation", "equal-width confidence bins of the "
                                 "calibration error (the untrained-tickets code: 4)")
    layer_metrics: str = _opt("default", "optimisation", "per-layer over-smoothing metrics of "
                              "the final model: default (all but mad_gap), all, none or a "
                              "comma-separated list")
    # run
    preset: str | None = _opt(None, "run", "start from a named recipe, e.g. ugt-paper (see "
                              "`gnnmask list presets`); --config and flags override it; "
                              "records name it", PRESETS)
    seed: int = _opt(0, "run", "random seed")
    amp: str = _opt("none", "run", "mixed precision (autocast) of the forward pass; parameters, "
                    "scores and optimiser state stay float32 (fp16 with loss scaling)",
                    lambda: ("none", "bf16", "fp16"))
    deterministic: bool = _opt(False, "run", "bit-reproducible runs where PyTorch allows it "
                               "(an operation without a deterministic implementation is an "
                               "error naming it) (true/false)")
    distributed: bool = _opt(False, "run", "one run over several processes (torchrun): "
                             "DistributedDataParallel, each rank its share of the training "
                             "nodes, records written by rank 0 (true/false)")
    check_masks: bool = _opt(False, "run", "record every rank's mask checksum each epoch and "
                             "stop if they differ (true/false)")
    device: str = _opt("auto", "run", "auto, cpu, cuda or cuda:N")
    history: bool = _opt(True, "run", "keep the per-epoch history in each record (--no-history: "
                         "final and per-layer metrics only, the compact records committed as "
                         "data) (true/false)")
    extra: dict[str, Any] = field(default_factory=dict, metadata=dict(
        group="method", help="method option KEY=VALUE (see `gnnmask methods`)", choices=None))

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


_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}

#: Fields only some methods read (see ``Method.reads``).
METHOD_FIELDS = ("sparsity", "mask_rule", "weight_init", "score_init", "schedule",
                 "schedule_end", "density_dist", "rewind_epoch", "edge_sparsity", "itop")

#: Fields that are model options (each model declares which it reads,
#: ``DeepGNN.reads``; another value than the default is refused for the rest).
MODEL_FIELDS = ("dropout", "activation", "bias", "norm", "residual", "heads", "output_heads",
                "alpha", "theta", "attention_dropout", "jk", "jk_dropout", "aggr", "degree",
                "conv_init", "gat_dropout")

#: Values for fields still ``None`` after the method's defaults were applied.
FALLBACKS: dict[str, Any] = {
    "dropout": 0.5,
    "bias": True,
    "weight_decay": 5e-4,
}


def upgrade_config(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored record's config with the settings it predates filled in with
    the values its run used: ``select`` ``val_acc`` (before ``--select``
    existed), ``task`` ``node`` (before tasks existed), the task heads unset,
    link prediction's sampled loss (before ``link_loss`` existed), and a
    model option its backbone came to read later, its backbone's own default
    (:attr:`DeepGNN.defaults`: SGC's runs had no dropout before it read one); any
    other field it lacks takes its default (a field is added with the default
    that keeps the old behaviour). Comparisons with a stored config go
    through this, so older records stay valid for resuming and reporting."""
    out = dict(stored)
    out.setdefault("select", "val_acc")
    out.setdefault("task", "node")
    for key in ("decoder", "hits_k", "readout"):
        out.setdefault(key, None)
    out.setdefault("link_loss", "sampled" if out["task"] == "link" else None)
    if out.get("model") in MODELS:  # an option a backbone came to read: what its runs did
        for key, value in get_model_class(out["model"]).defaults.items():
            if out.get(key) is None:
                out[key] = value
    for key, value in RunConfig().to_dict().items():  # later fields: their defaults
        out.setdefault(key, value)
    return out


def evaluation_names(text: str) -> list[str]:
    """``--evaluations`` as a list (``none``: [], ``all``: every one)."""
    if text in ("none", ""):
        return []
    names = list(EVALUATIONS) if text == "all" else [p.strip() for p in text.split(",")]
    bad = [n for n in names if n not in EVALUATIONS]
    if bad:
        raise UserError(f"--evaluations {bad[0]!r} is unknown; allowed: none, all or a "
                        f"comma-separated list of {', '.join(EVALUATIONS)}")
    return names


def flag(name: str) -> str:
    """The command-line spelling of a field: ``schedule_end`` -> ``--schedule-end``."""
    return "--" + name.replace("_", "-")


def preset_config(name: str, **changes) -> RunConfig:
    """The :class:`RunConfig` of preset ``name`` (see :mod:`gnnmask.presets`),
    with ``changes`` (RunConfig fields; an ``extra`` dict adds to and
    overrides the preset's options) applied on top."""
    preset = get_preset(name)
    settings = dict(preset.settings)
    extra = {**settings.pop("extra", {}), **changes.pop("extra", {})}
    unknown = sorted((set(settings) | set(changes)) - set(_FIELDS))
    if unknown:
        raise UserError(f"unknown setting {unknown[0]!r}; allowed: {', '.join(_FIELDS)}")
    return RunConfig(**{**settings, **changes, "extra": extra, "preset": preset.name})


def resolve_config(config: RunConfig, data=None) -> RunConfig:
    """Check that the method reads every method-specific value given, spell
    the dataset as the registry does, fill ``None`` fields from the model's
    own defaults, the method's and :data:`FALLBACKS` (in that order of
    precedence), then validate everything (one-line
    :class:`UserError` on the first problem). With the graph ``data`` a run
    is given, ``config.dataset`` must describe it
    (:func:`gnnmask.data.dataset_of`; a graph of one's own may carry a name
    outside the registry)."""
    check_types(config)
    method_cls = get_method_class(config.method)
    for name in METHOD_FIELDS:
        if getattr(config, name) is not None and name not in method_cls.reads:
            allowed = ", ".join(flag(f) for f in method_cls.reads) or "none"
            raise UserError(f"{flag(name)} is not used by method {method_cls.name!r}; "
                            f"its method flags: {allowed}")
    method_cls.check_config(config)
    check_task_fields(config)
    task_cls = get_task_class(config.task)
    values = config.to_dict()
    dataset = config.dataset or task_cls.default_dataset
    if data is not None and config.task != "node" and config.dataset is None:
        name = None if isinstance(data, (list, tuple)) else getattr(data, "name", None)
        if not isinstance(name, str):
            raise UserError(f"data of one's own for --task {config.task} needs a name; "
                            "allowed: RunConfig(dataset='my-graph', ...)")
        dataset = name
    # the registry's spelling, or the name of a user's own graph
    if data is None or config.task != "node":
        values["dataset"] = get_info(dataset).name if data is None or (
            dataset in DATASETS) else dataset
    else:
        values["dataset"] = dataset_of(data, dataset)
    if data is None and config.task not in get_info(dataset).tasks:
        serving = [n for n, i in DATASETS.items() if config.task in i.tasks]
        raise UserError(f"dataset {values['dataset']!r} has no {config.task} task; allowed "
                        f"with --task {config.task}: {', '.join(serving)}")
    if values["dataset"] in DATASETS and config.task != "node" and values["split"] != 0 and \
            get_info(values["dataset"]).split in ("ogb-time", "ogb-scaffold"):
        raise UserError(f"--split {values['split']} is invalid for dataset "
                        f"{values['dataset']!r}, which has one official split; allowed: 0")
    task_cls.fill(values)
    metric = task_cls.metric_for(values["dataset"])
    values["select"] = values["select"] or f"val_{metric}"
    allowed = (f"val_{metric}", "val_loss") + (("val_acc_and_loss",) if metric == "acc" else ())
    if values["select"] not in allowed:
        raise UserError(f"--select {values['select']} is not a metric of --task {config.task}"
                        f" on {values['dataset']}; allowed: {', '.join(allowed)}")
    model_cls = get_model_class(config.model)
    model_reads = model_cls.reads
    for key, value in {**FALLBACKS, **method_cls.defaults, **model_cls.defaults}.items():
        unread = (key in METHOD_FIELDS and key not in method_cls.reads) or \
            (key in MODEL_FIELDS and key not in model_reads)  # unread: stays unset
        if values.get(key) is None and not unread:
            values[key] = value
    for key, value in values.items():  # an integer given for a float field is that float
        if str(_FIELDS[key].type).startswith("float") and type(value) is int:
            values[key] = float(value)
    resolved = RunConfig.from_dict(values)
    validate_config(resolved)

    check_tricks(resolved, method_cls)
    return resolved


def type_problem(name: str, value) -> str | None:
    """``None`` if ``value`` has the type of :class:`RunConfig` field
    ``name``, else what is allowed (e.g. ``"an integer"``). Booleans are
    never numbers and numbers never booleans; floats must be finite."""
    annotation = str(_FIELDS[name].type)
    if value is None:
        return None if "None" in annotation else "a value (not null)"
    base = annotation.replace("| None", "").strip()
    if base == "bool":
        return None if isinstance(value, bool) else "true or false"
    if base == "int":
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if base == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "a number"
        return None if math.isfinite(value) else "a finite number"
    if base == "str":
        return None if isinstance(value, str) else "a string"
    if base.startswith("dict"):
        return None if isinstance(value, dict) else "a table of KEY = VALUE options"
    return None


def check_types(c: RunConfig) -> None:
    """:class:`UserError` naming the first field whose value has the wrong type."""
    for f in dataclasses.fields(c):
        allowed = type_problem(f.name, getattr(c, f.name))
        if allowed:
            raise UserError(f"{flag(f.name)} {getattr(c, f.name)!r} is invalid; allowed: "
                            f"{allowed}")


def _check_choices(c: RunConfig) -> None:
    for f in dataclasses.fields(c):
        choices, value = f.metadata.get("choices"), getattr(c, f.name)
        if choices is not None and value is not None and value not in choices():
            raise UserError(f"unknown {flag(f.name)} {value!r}; allowed: "
                            f"{', '.join(choices())}")


def validate_config(c: RunConfig) -> None:
    """Raise :class:`UserError` with one line for the first invalid field."""
    check_types(c)
    _check_choices(c)

    check_shape(c.layers, c.hidden, spell=flag)
    get_model_class(c.model).check_options(
        {k: getattr(c, k) for k in MODEL_FIELDS if getattr(c, k) is not None}, spell=flag,
        hidden=c.hidden)
    for name in ("drop_edge", "drop_node"):
        if not 0.0 <= getattr(c, name) < 1.0:
            raise UserError(f"{flag(name)} {getattr(c, name)!r} is out of range; allowed: "
                            "0 <= p < 1")
    if c.dropout is not None and not 0.0 <= c.dropout < 1.0:
        raise UserError(f"--dropout {c.dropout!r} is out of range; allowed: 0 <= dropout < 1")
    if c.sparsity is not None and not 0.0 <= c.sparsity < 1.0:
        raise UserError(f"--sparsity {c.sparsity!r} is out of range; allowed: 0 <= sparsity < 1")
    if c.edge_sparsity is not None and not 0.0 <= c.edge_sparsity < 1.0:
        raise UserError(f"--edge-sparsity {c.edge_sparsity!r} is out of range; allowed: "
                        "0 <= sparsity < 1")
    if c.rewind_epoch is not None and not (isinstance(c.rewind_epoch, int)
                                           and 0 <= c.rewind_epoch < c.epochs):
        raise UserError(f"--rewind-epoch {c.rewind_epoch!r} is out of range; allowed: an "
                        f"integer 0..{c.epochs - 1} (below --epochs)")
    if c.schedule_end is not None and not 0.0 < c.schedule_end <= 1.0:
        raise UserError(
            f"--schedule-end {c.schedule_end!r} is out of range; allowed: 0 < fraction <= 1"
        )
    if not c.lr > 0:
        raise UserError(f"--lr {c.lr!r} is invalid; allowed: a positive number")
    if c.weight_decay is not None and c.weight_decay < 0:
        raise UserError(f"--weight-decay {c.weight_decay!r} is invalid; allowed: >= 0")
    if c.conv_weight_decay is not None:
        if c.conv_weight_decay < 0:
            raise UserError(f"--conv-weight-decay {c.conv_weight_decay!r} is invalid; "
                            "allowed: >= 0")
        split = [name for name, cls in MODELS.items() if cls.conv_decay]
        if not get_model_class(c.model).conv_decay:
            raise UserError(f"--conv-weight-decay is not read by model {c.model!r}; allowed "
                            f"with: {', '.join(split)}")
        if not get_method_class(c.method).trains_weights:
            raise UserError(f"--conv-weight-decay is not read by method {c.method!r}, which "
                            "trains no weights")
    if c.conv_init != _FIELDS["conv_init"].default and c.weight_init not in (None, "default"):
        raise UserError(f"--conv-init {c.conv_init} is not read by method {c.method!r} with "
                        f"--weight-init {c.weight_init}, which re-draws the weights; allowed "
                        "with: a method that keeps the model's initialisation (dense, or "
                        "--weight-init default)")
    if c.grad_clip is not None and not c.grad_clip > 0:
        raise UserError(f"--grad-clip {c.grad_clip!r} is invalid; allowed: a positive number")
    if not 0.0 <= c.label_smoothing < 1.0:
        raise UserError(
            f"--label-smoothing {c.label_smoothing!r} is out of range; allowed: 0 <= eps < 1"
        )
    if not isinstance(c.epochs, int) or c.epochs < 1:
        raise UserError(f"--epochs {c.epochs!r} is invalid; allowed: a positive integer")
    for name in ("grad_flow_every", "trace_every"):
        value = getattr(c, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UserError(f"{flag(name)} {value!r} is invalid; allowed: 0 (off) or a "
                            "positive number of epochs")
    if c.patience < 0:
        raise UserError(f"--patience {c.patience!r} is invalid; allowed: 0 (off) or more")
    if isinstance(c.batch_size, bool) or not isinstance(c.batch_size, int) or c.batch_size < 0:
        raise UserError(f"--batch-size {c.batch_size!r} is invalid; allowed: 0 (full-batch) or "
                        "a positive number of nodes")
    if c.batch_size:
        parse_fanout(c.num_neighbors, c.layers)
    if not 0.0 <= c.holdout_classes < 1.0:
        raise UserError(f"--holdout-classes {c.holdout_classes!r} is out of range; allowed: "
                        "0 <= fraction < 1")
    wanted = evaluation_names(c.evaluations)
    if isinstance(c.calibration_bins, bool) or not isinstance(c.calibration_bins, int) \
            or c.calibration_bins < 1:
        raise UserError(f"--calibration-bins {c.calibration_bins!r} is invalid; allowed: a "
                        "positive integer")
    if c.calibration_bins != 15 and "calibration" not in wanted:
        raise UserError(f"--calibration-bins {c.calibration_bins} is not used without "
                        "--evaluations calibration (or all)")
    if c.holdout_rounding != "ceil" and not c.holdout_classes:
        raise UserError(f"--holdout-rounding {c.holdout_rounding} is not used without "
                        "--holdout-classes F")
    if "ood" in wanted and not c.holdout_classes:
        raise UserError("--evaluations ood needs --holdout-classes F (the classes left out of "
                        "training are the out-of-distribution test nodes)")
    if c.layer_metrics not in ("default", "all", "none"):
        bad = [m for m in c.layer_metrics.split(",") if m not in METRICS]
        if bad:
            raise UserError(
                f"--layer-metrics {bad[0]!r} is unknown; allowed: default, all, none or a "
                f"comma-separated list of {', '.join(METRICS)}"
            )
    if c.data_root is not None:  # a given root must be read, and be a folder

        check_root(c.dataset, c.data_root)
    if c.device not in ("auto", "cpu", "cuda") and not str(c.device).startswith("cuda:"):
        raise UserError(f"unknown device {c.device!r}; allowed: auto, cpu, cuda, cuda:N")
