"""The one training engine: every task, every method.

:func:`train` resolves a :class:`~gnnmask.train.config.RunConfig`, lets the
:class:`~gnnmask.tasks.Task` (node, link or graph) load and split the data,
builds the model with the task's output width and head, lets the chosen
:class:`~gnnmask.methods.Method` prepare it, and runs the loop::

    for epoch in range(epochs):
        method.on_epoch_start(epoch, model)
        loss = task.loss(model, model(*method.inputs(data))) + method.penalty(model)
        loss.backward(); method.after_backward(...); clip gradients (optional)
        optimizer.step(); method.after_step(...)
        evaluate (task.evaluate); keep the state with the best validation score

The returned record holds the resolved config, versions, per-epoch values and
the final metrics (``{train,val,test}_<metric>`` of the task) of the model
selected at the best validation score.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import random
import statistics
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch_geometric.utils import dropout_edge, dropout_node

from gnnmask.data.sampling import neighbor_loader, parse_fanout
from gnnmask.errors import UserError, check_arg
from gnnmask.methods import Context, get_method_class
from gnnmask.metrics import default_metrics, evaluate_model, gradient_flow, holdout_classes, trace
from gnnmask.metrics.cost import count_macs, model_bytes
from gnnmask.models import build_model, get_model_class
from gnnmask.models.deep import sparse_features
from gnnmask.tasks import Task, get_task_class
from gnnmask.train.config import MODEL_FIELDS, RunConfig, evaluation_names, resolve_config
from gnnmask.train.device import resolve_device
from gnnmask.train.distributed import DistributedDataParallel, ddp, mask_checksums, rank_and_world
from gnnmask.train.optim import make_lr_scheduler
from gnnmask.train.optim import make_optimizer as _make_optimizer
from gnnmask.train.records import versions
from gnnmask.train.tricks import Tricks

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(total, nonzero)`` over the network's effective weights and biases.

    Parametrized tensors (e.g. masked weights) count with their effective,
    masked value; mask scores are not network parameters and are not counted.
    """
    total = nonzero = 0
    # Parametrization internals (originals, mask scores) are not network tensors.
    internal = {id(m) for module in model.modules()
                if isinstance(module, parametrize.ParametrizationList) for m in module.modules()}
    with torch.no_grad():
        for module in model.modules():
            if id(module) in internal:
                continue
            tensors = [p for _, p in module.named_parameters(recurse=False)]
            if parametrize.is_parametrized(module):
                tensors += [getattr(module, n) for n in module.parametrizations]
            for t in tensors:
                if isinstance(t, nn.parameter.UninitializedParameter):
                    continue
                total += t.numel()
                nonzero += int(torch.count_nonzero(t))
    return total, nonzero



def model_features(config: RunConfig, x: Tensor) -> Tensor:
    """The node features as the model consumes them: a sparse CSR tensor for
    GCN stacks when at most 5% of ``x`` is non-zero (bag-of-words features;
    :func:`gnnmask.models.deep.sparse_features`), else ``x``."""
    return sparse_features(x) if get_model_class(config.model).sparse_input else x


def steps_per_epoch(config: RunConfig, train_nodes: int) -> int:
    """Optimiser steps per epoch over ``train_nodes`` training nodes: one
    full-batch step, or one per mini-batch of ``config.batch_size``."""
    return -(-train_nodes // config.batch_size) if config.batch_size else 1


def make_task(config: RunConfig) -> Task:
    """The :class:`~gnnmask.tasks.Task` object of a resolved ``config``."""
    return get_task_class(config.task)(config)


def load_data(config: RunConfig):
    """The data of a resolved ``config`` as its task loads and splits it
    (node datasets as :func:`gnnmask.data.load_dataset` returns them; link
    prediction's held-out edges; graph classification's union of graphs)."""
    return make_task(config).load(config)


def build(config: RunConfig, data, context: Context | None = None, task: Task | None = None):
    """Build the model for ``config`` on ``data`` (the task's data: output
    width and head from ``task``, default :func:`make_task`) and let the
    method prepare it. ``context`` (default: one process over all of
    ``data``'s training examples, and the task's training objective) tells
    the method how many steps it will see."""
    task = task or make_task(config)
    if context is None:
        context = Context(steps_per_epoch(config, task.train_size(data)),
                          objective=task.objective(data))
    method = get_method_class(config.method)(config, context)
    torch.manual_seed(config.seed)
    options = {k: getattr(config, k) for k in MODEL_FIELDS if getattr(config, k) is not None}
    model = build_model(config.model, data.num_features, config.hidden,
                        task.out_channels(data, config.hidden), config.layers,
                        **options).to(data.x.device)
    model = task.attach_head(model, data)
    model = method.prepare(model, data)
    return model, method


def make_optimizer(config: RunConfig, method, model: nn.Module) -> torch.optim.Optimizer:
    """The configured optimiser over the tensors the method trains (fused
    where PyTorch has a fused kernel; the record names the one used). With
    ``conv_weight_decay`` the parameters of ``model.convs`` form their own
    group with that decay (GCNII's two weight decays)."""
    params = method.parameters(model)
    if config.conv_weight_decay is not None:
        convs = {id(p) for p in model.convs.parameters()}
        params = list(params)
        groups = [{"params": [p for p in params if id(p) in convs],
                   "weight_decay": config.conv_weight_decay},
                  {"params": [p for p in params if id(p) not in convs]}]
        params = [g for g in groups if g["params"]]
    return _make_optimizer(config.optimizer, params, config.lr, config.weight_decay)


def make_scaler(config: RunConfig, device: torch.device) -> torch.amp.GradScaler | None:
    """The loss scaler of ``amp="fp16"`` (``None`` otherwise)."""
    return torch.amp.GradScaler(device.type) if config.amp == "fp16" else None


class Diverged(Exception):
    """Raised inside the loop when the training loss or the outputs become
    non-finite; :func:`train` turns it into a ``status: "diverged"`` record."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def drop_graph(config: RunConfig, inputs: tuple) -> tuple:
    """The model's training inputs with DropEdge / DropNode applied
    (``config.drop_edge``, ``config.drop_node``; PyG's ``dropout_edge`` over
    the stored (directed) edges, as the DropEdge code samples the adjacency's
    non-zeros, and ``dropout_node``), drawn anew at each call; an edge weight
    (``inputs[2]``, e.g. UGS's edge mask) follows its edges. Unchanged when
    both are 0."""
    if not (config.drop_edge or config.drop_node) or len(inputs) < 2:
        return inputs
    x, edge_index, *rest = inputs
    keep = torch.ones(edge_index.size(1), dtype=torch.bool, device=edge_index.device)
    if config.drop_edge:
        keep &= dropout_edge(edge_index, p=config.drop_edge)[1]
    if config.drop_node:
        _, node_edges, _ = dropout_node(edge_index, p=config.drop_node, num_nodes=x.size(0))
        keep &= node_edges
    return (x, edge_index[:, keep], *(r[keep] for r in rest))


def training_step(config: RunConfig, model: nn.Module, method, optimizer, data,
                  epoch: int, loss_of=None, scaler=None) -> dict[str, float]:
    """One training step: forward, loss (+ the method's penalty), backward,
    optional gradient clipping, optimiser step, with the method's hooks
    around them. ``loss_of(net, out)`` is the task's training loss of the
    node outputs ``out`` (the whole graph's, or a mini-batch's; default: the
    configured task's loss of ``data``'s training examples). Returns
    ``{"loss", "lr"[, "grad_norm"]}`` (the learning rate used; the gradient
    norm before clipping when ``config.grad_clip``). ``scaler``: the fp16
    loss scaler (:func:`make_scaler`), if any. A non-finite loss raises
    :class:`Diverged` before the backward pass, so the weights and scores
    are left as they were."""
    if loss_of is None:
        task = make_task(config)
        loss_of = lambda net, out: task.loss(net, out, data)  # noqa: E731
    net = model.module if isinstance(model, DistributedDataParallel) else model
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with autocast(config, data.x.device):
        out = model(*drop_graph(config, method.inputs(data)))
        loss = loss_of(net, out)
    penalty = method.penalty(net)
    if penalty is not None:
        loss = loss + penalty
    row = {"loss": loss.item(), "lr": optimizer.param_groups[0]["lr"]}
    if not math.isfinite(row["loss"]):  # before any gradient reaches the method's state
        raise Diverged(f"training loss {row['loss']}")
    (loss if scaler is None else scaler.scale(loss)).backward()
    method.after_backward(epoch, net)
    if config.grad_clip is not None:
        if scaler is not None:
            scaler.unscale_(optimizer)
        trained = [p for g in optimizer.param_groups for p in g["params"]]
        row["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(trained, config.grad_clip))
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()
    method.after_step(epoch, net, optimizer)
    return row


@contextlib.contextmanager
def deterministic(enabled: bool, device: torch.device) -> Iterator[None]:
    """``torch.use_deterministic_algorithms(enabled)`` for the duration of a
    run (the previous setting is restored); an operation without a
    deterministic implementation is a :class:`UserError` naming it. On CUDA,
    ``CUBLAS_WORKSPACE_CONFIG`` must be set before CUDA starts (the command
    line does it)."""
    if not enabled:
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    except RuntimeError as e:
        text = " ".join(str(e).split())
        if "deterministic" not in text:
            raise
        raise UserError(f"--deterministic: {text.split(' does not have')[0][:160]} has no "
                        f"deterministic implementation on {device.type}; allowed: run "
                        "without --deterministic") from None
    finally:
        torch.use_deterministic_algorithms(before)


def autocast(config: RunConfig, device: torch.device):
    """``config.amp`` as a ``torch.autocast`` context (disabled for ``none``)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.amp)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def training_epoch(config: RunConfig, model: nn.Module, method, optimizer, data, epoch: int,
                   loader=None, scaler=None, task: Task | None = None) -> dict[str, float]:
    """One epoch: one full-batch :func:`training_step`, or, with a
    mini-batch ``loader``, one step per batch (the task's loss of the batch:
    its seed nodes with :func:`gnnmask.data.sampling.neighbor_loader`, its
    graphs for graph classification; ``loss`` is their mean)."""
    task = task or make_task(config)
    if loader is None:
        return training_step(config, model, method, optimizer, data, epoch,
                             lambda net, out: task.loss(net, out, data), scaler=scaler)
    rows = []
    for batch in loader:
        batch = batch.to(data.x.device)
        batch.features = model_features(config, batch.x)
        rows.append(training_step(config, model, method, optimizer, batch, epoch,
                                  lambda net, out, b=batch: task.batch_loss(net, out, b),
                                  scaler=scaler))
    row = {"loss": statistics.fmean(r["loss"] for r in rows), "lr": rows[-1]["lr"]}
    if "grad_norm" in rows[-1]:
        row["grad_norm"] = max(r["grad_norm"] for r in rows)
    return row


def _evaluate(model, method, data, task: Task) -> tuple[dict[str, float], float]:
    """The task's metrics of every split and the validation loss, in eval mode."""
    model.eval()
    with torch.no_grad(), method.evaluating(model):
        return task.evaluate(model, model(*method.inputs(data)), data)


def _final(model, method, data, task: Task) -> dict[str, Any]:
    """The record's metrics of the final state: the task's metrics of every
    split and what it says of the predictions (:meth:`Task.predictions`)."""
    model.eval()
    with torch.no_grad(), method.evaluating(model):
        out = model(*method.inputs(data))
        return {**task.evaluate(model, out, data)[0], **task.predictions(out, data)}


def _layer_metrics(model, method, data, which: str, label: str | None = None,
                   groups=None) -> list[dict[str, Any]]:
    """Over-smoothing metrics of every layer's output (``[]`` for ``"none"``),
    per graph and averaged over the graphs with ``groups`` (node -> graph).
    With ``label``, logs a line before and one for each layer whose metrics
    take a second or more (large inputs: the raw features of a big graph)."""
    if which == "none":
        return []

    names = {"all": None, "default": default_metrics()}.get(which)
    names = names if names or which == "all" else which.split(",")
    progress = None
    if label is not None:
        log.info("%s: layer metrics (%s) of every layer", label,
                 "all" if names is None else ", ".join(names))

        def progress(row, seconds):
            if seconds >= 1.0:
                log.info("%s: layer %d (%s, %d dims) took %.1f s", label, row["layer"],
                         row["name"], row["dim"], seconds)
    return trace(model, data, metrics=names, forward=lambda m, d: m(*method.inputs(d)),
                 progress=progress, groups=groups)


def inference_cost(model: nn.Module, method, data) -> dict[str, Any]:
    """The record's cost fields: the MACs of one full-graph inference pass
    through the graph the method gives the model (kept weights and kept
    edges; :func:`gnnmask.metrics.cost.count_macs`), the dense model's on the
    whole graph, and the bytes to store the model
    (:func:`~gnnmask.metrics.cost.model_bytes`)."""
    kept = count_macs(model, *method.inputs(data), num_nodes=data.num_nodes)
    dense = count_macs(model, data.features, data.edge_index, num_nodes=data.num_nodes)
    return {key: kept[key] for key in ("inference_macs", "transform_macs", "propagation_macs")} \
        | {key: dense[key] for key in ("dense_macs", "dense_transform_macs",
                                       "dense_propagation_macs")} \
        | model_bytes(model, trained=method.trains_weights) \
        | {"macs_per_module": kept["per_module"]}


def _flow_probe(config: RunConfig, method, data, task: Task):
    """``model -> gradient_flow(...)`` of the task's training objective
    (:meth:`~gnnmask.tasks.Task.objective`: fixed, so probing draws nothing
    from the run's generators; ``None`` if off)."""
    if not config.grad_flow_every:
        return None
    objective = task.objective(data)
    return lambda model: gradient_flow(
        model, lambda m: objective.logits(m, method.inputs(data)), objective.loss)


def _hold_out(config: RunConfig, data) -> list[int]:
    """Remove ``config.holdout_classes`` of the classes from the training and
    validation nodes; their test nodes become ``data.ood_mask`` and leave
    ``data.test_mask`` (in-distribution test nodes). Returns those classes."""
    if not config.holdout_classes:
        return []

    held = holdout_classes(int(data.num_classes), config.holdout_classes, config.seed,
                           rounding=config.holdout_rounding)
    out = torch.isin(data.y, torch.tensor(held, device=data.y.device))
    data.ood_mask = data.test_mask & out
    data.train_mask, data.val_mask = data.train_mask & ~out, data.val_mask & ~out
    data.test_mask = data.test_mask & ~out
    return held


@torch.no_grad()
def _evaluations(config: RunConfig, model, method, data) -> dict[str, Any]:
    """The ``--evaluations`` of the final model (:func:`gnnmask.metrics.evaluate_model`)."""
    names = evaluation_names(config.evaluations)
    if not names:
        return {}
    model.eval()

    def forward(d):
        if d is not data:  # a perturbed copy: the model's features from its new x
            d.features = model_features(config, d.x)
        return model(*method.inputs(d))

    return evaluate_model(forward, data, names, seed=config.seed, bins=config.calibration_bins)


class Selection:
    r"""Which epoch's state a run keeps (``--select``), and whether an epoch
    counts as progress for ``--patience``.

    ``val_<metric>`` keeps the epoch of the highest validation metric and
    ``val_loss`` that of the lowest validation loss (the GCNII and DAGNN
    code); each resets the patience only when it keeps. ``val_acc_and_loss``
    is the rule of the GAT code (Velickovic et al., ICLR 2018,
    ``execute_cora.py``): with :math:`a^*` the best validation accuracy and
    :math:`\ell^*` the lowest validation loss so far, an epoch with
    :math:`a \ge a^*` or :math:`\ell \le \ell^*` resets the patience and
    updates both records, and only an epoch with both is kept.

    >>> s = Selection("val_acc_and_loss")
    >>> s.update({"val_acc": 0.5}, 1.0), s.update({"val_acc": 0.6}, 1.2)
    ((True, True), (False, True))
    """

    def __init__(self, select: str):
        self.select = select
        self.acc, self.loss = -math.inf, math.inf

    def update(self, accs: dict[str, float], val_loss: float) -> tuple[bool, bool]:
        """``(keep, improved)`` for an epoch's validation metrics and loss."""
        if self.select == "val_loss":
            keep = val_loss < self.loss
            self.loss = min(self.loss, val_loss)
            return keep, keep
        if self.select == "val_acc_and_loss":
            acc = accs["val_acc"]
            keep, improved = acc >= self.acc and val_loss <= self.loss, \
                acc >= self.acc or val_loss <= self.loss
            if improved:
                self.acc, self.loss = max(self.acc, acc), min(self.loss, val_loss)
            return keep, improved
        keep = accs[self.select] > self.acc
        self.acc = max(self.acc, accs[self.select])
        return keep, keep

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.select!r})"


def _fit(config: RunConfig, model, method, data, phase, task: Task, *, tricks, loader,
         progress, log_every, sync) -> tuple[list[dict[str, Any]], dict[str, list], int, str,
                                              dict[str, Any] | None]:
    """One training phase: ``config.epochs`` epochs (or fewer, with
    ``patience``) from a fresh optimiser, keeping the state (model and
    method) selected by ``config.select`` (:class:`Selection`) among the
    selectable epochs, restored at the end.
    Returns the phase's history, its periodic probes (``gradient_flow``
    every ``config.grad_flow_every`` epochs, ``layer_trace`` every
    ``config.trace_every``), its best epoch, the optimiser
    implementation used (``fused`` or ``default``) and, when the loss or the
    validation outputs became non-finite, ``{"epoch", "reason"}`` (the phase
    stops there; the best finite state is restored, if any epoch was
    selectable before it), else ``None``."""
    optimizer = make_optimizer(config, method, model)
    scaler = make_scaler(config, data.x.device)
    scheduler = make_lr_scheduler(config.lr_schedule, optimizer, config.epochs)
    trained = model
    if config.distributed:  # gradients averaged over ranks; masks are not broadcast but
        # recomputed on every rank from its identical scores (checked with --check-masks)
        trained = ddp(model)
    history: list[dict[str, Any]] = []
    flow = _flow_probe(config, method, data, task)
    metric = task.metric
    selection = Selection(config.select)
    best: dict[str, Any] = {"epoch": -1, "state": None}
    # traces record the --layer-metrics (the default set when those are off)
    traced = "default" if config.layer_metrics == "none" else config.layer_metrics
    groups = task.trace_groups(data)
    bad_epochs = 0
    epochs = range(config.epochs)
    bar = None
    where = f" {phase.name} {phase.round}" if len(method.phases()) > 1 else ""
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(epochs, desc=f"{config.method}{where} L{config.layers} seed {config.seed}",
                   leave=False, dynamic_ncols=True)
        epochs = bar
    flows: list[dict[str, Any]] = []
    if flow is not None:  # at initialisation (of the phase), before the first step
        flows.append({"epoch": -1, **flow(model)})
    traces: list[dict[str, Any]] = []
    every = config.trace_every
    if every:
        traces.append({"epoch": -1, "layers": _layer_metrics(model, method, data, traced,
                                                             groups=groups)})
    diverged = None
    for epoch in epochs:
        tricks.on_epoch_start(epoch, model)
        method.on_epoch_start(epoch, model)
        sync()
        t0 = time.perf_counter()
        try:
            step = training_epoch(config, trained, method, optimizer, data, epoch, loader,
                                  scaler=scaler, task=task)
        except Diverged as e:
            diverged = {"epoch": epoch, "reason": e.reason}
            break
        sync()
        step_s = time.perf_counter() - t0
        if scheduler is not None:
            scheduler.step()
        accs, val_loss = _evaluate(model, method, data, task)
        if not math.isfinite(val_loss):
            diverged = {"epoch": epoch, "reason": f"validation loss {val_loss}"}
            break
        row = {"epoch": epoch, "loss": step["loss"], "val_loss": val_loss, **accs,
               "step_s": step_s, "lr": step["lr"],
               **({"grad_norm": step["grad_norm"]} if "grad_norm" in step else {}),
               **method.epoch_info(model)}
        if where:
            row["phase"] = f"{phase.name} {phase.round}"
        if config.check_masks:
            row["mask_checksums"] = mask_checksums(model)
        if flow is not None and (epoch + 1) % config.grad_flow_every == 0:
            flows.append({"epoch": epoch, **({"phase": row["phase"]} if where else {}),
                          **flow(model)})
        if every and (epoch + 1) % every == 0:
            traces.append({"epoch": epoch, **({"phase": row["phase"]} if where else {}),
                           **method.epoch_info(model),
                           "layers": _layer_metrics(model, method, data, traced,
                                                    groups=groups)})
        history.append(row)
        if log_every and ((epoch + 1) % log_every == 0 or epoch + 1 == config.epochs):
            log.info("%s %s%s L%d seed %d: epoch %d/%d  loss %.4f  val %.4f  test %.4f",
                     config.dataset, config.method, where, config.layers, config.seed,
                     epoch + 1, config.epochs, row["loss"], accs[f"val_{metric}"],
                     accs[f"test_{metric}"])
        if bar is not None:
            bar.set_postfix(loss=f"{row['loss']:.3f}", val=f"{accs[f'val_{metric}']:.3f}",
                            test=f"{accs[f'test_{metric}']:.3f}")
        if method.selectable(epoch) and tricks.selectable(epoch):
            keep, improved = selection.update(accs, val_loss)
            if keep:
                best = {"epoch": epoch, "state": copy.deepcopy(model.state_dict()),
                        "method": copy.deepcopy(method.state())}
            if improved:
                bad_epochs = 0
            else:
                bad_epochs += 1
                if config.patience and bad_epochs >= config.patience:
                    break
    if bar is not None:
        bar.close()
    if best["state"] is not None:
        model.load_state_dict(best["state"])
        method.load_state(best["method"])
    impl = "fused" if optimizer.defaults.get("fused") else "default"
    if diverged is not None:
        diverged["restored"] = best["state"] is not None
        if where:
            diverged["phase"] = f"{phase.name} {phase.round}"
        log.warning("%s %s%s L%d seed %d diverged at epoch %d (%s)%s", config.dataset,
                    config.method, where, config.layers, config.seed, diverged["epoch"],
                    diverged["reason"], f"; best finite epoch {best['epoch']} restored"
                    if diverged["restored"] else "; no selectable epoch before it")
    return (history, {"gradient_flow": flows, "layer_trace": traces}, best["epoch"], impl,
            diverged)


def train(
    config: RunConfig,
    data=None,
    *,
    progress: bool = False,
    log_every: int | None = None,
    return_model: bool = False,
    on_model=None,
) -> dict[str, Any] | tuple[dict[str, Any], nn.Module]:
    """Train one model for one seed and return its record.

    Each of the method's phases (one for most methods; several rounds of
    pruning and retraining for iterative ones, see ``Method.phases``) trains
    ``config.epochs`` epochs from a fresh optimiser and keeps its best
    validation state; the record describes the model after the last phase,
    and ``rounds`` every reported phase.

    Args:
        config: the run configuration (``None`` fields take method defaults).
        data: the graph, loaded from ``config.dataset`` when omitted. Node
            classification: a PyG ``Data`` with ``train/val/test_mask`` and
            ``num_classes``; link prediction: a ``Data`` (split here from
            the seed) or a split one (:func:`gnnmask.data.links.link_split`);
            graph classification: a list of ``Data`` graphs with one label
            each, or a union (:func:`gnnmask.data.graphs.load_graphs`).
        progress: show a tqdm progress bar.
        log_every: log (``logging``, logger ``gnnmask.train.engine``) one line
            every this many epochs, e.g. for logs that are not a terminal.
        return_model: also return the trained model (best validation state).
        on_model: called as ``on_model(model, inputs)`` once the final model is
            evaluated (not for a run that diverged with no finite state), with
            the inputs the method gives it (``(features, edge_index[,
            edge_weight])``: a graph ticket's kept edges), e.g. to export it
            (:func:`gnnmask.export.export_model`).
    """
    check_arg("train", "config", config, RunConfig, "a gnnmask.train.RunConfig")
    config = resolve_config(config, data=data)
    device = resolve_device(config.device)
    if config.distributed and device.type == "cuda":
        import os

        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    with caller_rng_kept(device):
        return _train(config, data, device, progress, log_every, return_model, on_model)


@contextlib.contextmanager
def caller_rng_kept(device: torch.device):
    """Run a block that seeds and draws from the global Python, NumPy and torch
    generators, then put the caller's states back (``torch.random.fork_rng``
    for torch's CPU and, on CUDA, every visible device's)."""
    py, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)


def _train(config: RunConfig, data, device: torch.device, progress, log_every,
           return_model, on_model=None):
    """:func:`train` on the resolved ``config``, under its own seeds."""
    rank, world = rank_and_world(config)
    seed_everything(config.seed)
    task = make_task(config)
    data = task.load(config) if data is None else task.adopt(data)
    data = copy.copy(data).to(device)  # the caller's graph stays where it is
    held_out = _hold_out(config, data)
    data.features = model_features(config, data.x)
    metric = task.metric
    if config.task == "node":
        share = data.train_mask.nonzero().view(-1)[rank::world]  # this rank's training nodes
        train_size = share.numel()
    else:
        train_size = task.train_size(data)
    model, method = build(config, data, Context(steps_per_epoch(config, train_size), world,
                                                objective=task.objective(data)), task=task)
    tricks = Tricks(config)
    tricks.prepare(model)
    scales = tricks.rescale(model, method, data)
    loader = None
    if world > 1:
        data.rank_train_mask = torch.zeros_like(data.train_mask)
        data.rank_train_mask[share] = True
    if config.batch_size and config.task == "node":
        loader = neighbor_loader(data, share, parse_fanout(config.num_neighbors, config.layers),
                                 config.batch_size, seed=config.seed + rank)
    elif config.batch_size:
        loader = task.loader(data, config.batch_size, config.seed)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    started = time.perf_counter()
    history: list[dict[str, Any]] = []
    probes: dict[str, list] = {"gradient_flow": [], "layer_trace": []}
    rounds: list[dict[str, Any]] = []
    stopped: list[dict[str, Any]] = []  # unreported phases ended early at their best state
    phases = method.phases()
    diverged = None
    with deterministic(config.deterministic, device):
        for phase in phases:
            method.start_phase(phase, model, data)
            phase_history, phase_probes, best_epoch, impl, diverged = _fit(
                config, model, method, data, phase, task, tricks=tricks,
                loader=loader, progress=progress, log_every=log_every, sync=sync)
            method.end_phase(phase, model)
            history += phase_history
            for key, values in phase_probes.items():
                probes[key] += values
            if phase.reported and (diverged is None or diverged["restored"]):
                final = _final(model, method, data, task)
                rounds.append({"round": phase.round, "phase": phase.name, **final,
                               "best_epoch": best_epoch, "epochs_run": len(phase_history),
                               "nonzero_params": count_parameters(model)[1],
                               **method.epoch_info(model),
                               **({"diverged": True} if diverged else {})})
            if diverged is not None and not phase.reported and diverged["restored"]:
                # A search phase's job (the state of its best validation epoch) is
                # done: the run goes on from that state, and says so.
                stopped.append(diverged)
                diverged = None
            if diverged is not None:
                break
    # A diverged run keeps its best finite state when one was selectable; otherwise
    # its metrics are those of the best finite epoch of the phase that diverged.
    usable = diverged is None or diverged["restored"]
    if usable:
        final = _final(model, method, data, task)
        label = f"{config.dataset} {config.method} L{config.layers} seed {config.seed}"
        layers = _layer_metrics(model, method, data, config.layer_metrics,
                                label=label if log_every else None,
                                groups=task.trace_groups(data))
        best_epoch = rounds[-1]["best_epoch"] if rounds else -1
    else:
        best_row = max(phase_history, key=lambda r: r[f"val_{metric}"], default=None)
        final = {k: None for k in (f"train_{metric}", f"val_{metric}", f"test_{metric}")}
        if best_row is not None:  # every metric of the task, e.g. link prediction's Hits@K
            final = {k: v for k, v in best_row.items()
                     if k.startswith(("train_", "val_", "test_")) and k != "val_loss"}
        diverged["best_finite_epoch"] = None if best_row is None else best_row["epoch"]
        best_epoch = -1 if best_row is None else best_row["epoch"]
        layers = []
    total, nonzero = count_parameters(model)
    cost = inference_cost(model, method, data)  # of the final state, diverged or not
    steps = [r["step_s"] for r in history]
    record = {
        "config": config.to_dict(),
        "seed": config.seed,
        "versions": versions(),
        "device": str(device),
        **({"world_size": world} if world > 1 else {}),
        "metric": metric,
        "dataset_stats": task.stats(data),
        "model_repr": repr(model),
        "method": method.export(model),
        "method_options": {key: method.extra(key) for key in method.options},
        "optimizer_impl": impl,
        "status": "finished" if diverged is None else "diverged",
        **({"diverged": diverged} if diverged else {}),
        "best_epoch": best_epoch,
        **final,
        "params": total,
        "nonzero_params": nonzero,
        **cost,
        "epoch_time_s": statistics.median(steps) if steps else None,
        "total_time_s": time.perf_counter() - started,
        "epochs_run": len(history),
        "layers": layers,
        **({"history": history} if config.history else {}),
    }
    if len(phases) > 1:
        record["rounds"] = rounds
    if stopped:
        record["stopped_phases"] = stopped
    record.update({key: values for key, values in probes.items() if values})
    if held_out:
        record["held_out_classes"] = held_out
    evaluation = _evaluations(config, model, method, data) if usable else {}
    if evaluation:
        record["evaluation"] = evaluation
    if tricks.active:
        record["tricks"] = {**tricks.export(), **({"scales": scales} if scales else {})}
    if on_model is not None and usable:
        model.eval()
        on_model(model, method.inputs(data))
    method.finalize(model)
    return (record, model) if return_model else record
