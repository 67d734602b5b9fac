"""Training tricks for sparse networks, each on its own flag (the ToST recipe).

"Training Your Sparse Neural Network Better with Any Mask" (ToST, Jaiswal et
al., ICML 2022) trains a fixed sparse mask (random, SNIP, GraSP, SynFlow,
lottery tickets, ...) better with components that change training, not the
final network; here each is a :class:`~gnnmask.train.RunConfig` field, so an
ablation is one sweep:

``ghost_soft = K``    ghost soft neurons: for epoch ``e < K`` every ReLU of
                      the model computes ``(1 - l) SiLU(x) + l ReLU(x)`` with
                      ``l = e / K``, a smooth activation annealed linearly to
                      ReLU; from epoch ``K`` on the model's ReLU is restored.
``ghost_skip = K``    ghost skip connections: for epoch ``e < K`` every hidden
                      layer adds ``b h_(l-1)`` with ``b = 1 - e / K`` (an
                      identity skip phased out linearly); from epoch ``K`` on
                      the model is the plain one.
``ghost_form``        ``branch`` is the released ToST code's ghost skip:
                      each hidden-to-hidden layer gets a trainable, unmasked
                      branch ``BatchNorm(W_g h_(l-1))`` with every entry of
                      ``W_g`` initialised to 1e-4, added to the layer's output
                      (after its activation, where the identity ghost skip
                      goes; the code adds it before a ResNet block's
                      activation) and dropped at epoch ``K``; the code never
                      drops it, which ``K >= epochs`` reproduces (the
                      branches are then part of the final, evaluated model
                      and counted in its parameters).
``label_smoothing``   (already a field) the paper uses 0.1.
``rescale_init = N``  layer-wise rescaled initialisation, ``N`` steps of
                      ``rescale_rule``. ``gradinit`` is the released ToST
                      code's GradInit (Zhu et al., NeurIPS 2021): one scale
                      ``a_t >= 0.01`` per trained tensor ``t`` (biases
                      ``>= 0``), ``w_t = a_t w_t(0)``, fitted by Adam (lr
                      1e-2, each scale's gradient clipped to [-1, 1]) to the
                      loss after one normalised gradient step,
                      ``L(w - eta g / ||g||) / eta`` with ``eta = 0.1``, or,
                      while ``||g|| > gamma = 1``, to ``||g||`` itself (the
                      code's defaults for its README run); the loss is plain
                      cross-entropy on the training nodes, dropout off. The
                      code draws two mini-batches per step; full-batch
                      training has one. ``lsuv`` (the default), more simply,
                      rescales each weight tensor, layer after
                      layer in forward order, until the output of its module
                      on the training graph has unit standard deviation
                      (LSUV, Mishkin & Matas, ICLR 2016), with at most ``N``
                      forward passes per tensor (the module that owns the
                      tensor, or its nearest ancestor that is called: a GCN
                      layer fed sparse features applies its weight without
                      calling ``lin``). On row-normalised bag-of-words
                      features the first layer's output is tiny, so unit
                      standard deviation multiplies its weights by hundreds
                      (measured in docs/RESULTS.md). Scaling keeps zeros at zero,
                      so the mask is kept. Only for methods that train
                      weights.

The released ToST code has no annealing schedule for the ghost soft neurons
(it trains with SiLU throughout) nor for its ghost branches (kept to the
end); the linear schedules above are this project's choice. After epoch
``max(K)`` the model equals the plain one on the same weights, except for
``ghost_form=branch`` with ``K >= epochs``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gnnmask.errors import UserError

#: A tensor is rescaled until its module's output std is within this of 1.
RESCALE_TOLERANCE = 0.1
#: Ghost branch weights start at this constant (the released ToST code).
GHOST_BRANCH_INIT = 1e-4
#: GradInit as the ToST code runs it: look-ahead step, gradient-norm bound,
#: Adam learning rate of the scales, lower bound of the weight scales.
GRADINIT_ETA, GRADINIT_GAMMA, GRADINIT_LR, GRADINIT_MIN_SCALE = 0.1, 1.0, 1e-2, 0.01


class GhostActivation(nn.Module):
    """``(1 - l) SiLU(x) + l ReLU(x)``; ``l = 1`` is exactly ReLU."""

    def __init__(self, level: float = 0.0):
        super().__init__()
        self.level = level

    def forward(self, x: Tensor) -> Tensor:
        if self.level >= 1.0:
            return F.relu(x)
        return (1.0 - self.level) * F.silu(x) + self.level * F.relu(x)

    def extra_repr(self) -> str:
        return f"level={self.level:g}"


def check_tricks(config, method_cls) -> None:
    """One-line errors for tricks the configuration cannot use."""
    for name in ("ghost_soft", "ghost_skip", "rescale_init"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UserError(f"--{name.replace('_', '-')} {value!r} is invalid; allowed: 0 (off) "
                            "or a positive integer")
    if config.ghost_soft and config.activation != "relu":
        raise UserError(f"--ghost-soft anneals to ReLU; --activation is {config.activation!r}; "
                        "allowed: relu")
    if config.ghost_skip and config.layers < 3:
        raise UserError(f"--ghost-skip adds skips between hidden layers of equal width; "
                        f"--layers {config.layers} has none; allowed: --layers 3 or more")
    if config.rescale_init and not method_cls.trains_weights:
        raise UserError(f"--rescale-init learns weight scales; method {method_cls.name!r} keeps "
                        "its weights frozen (tickets are rebuilt from their seed)")
    if config.rescale_rule != "lsuv" and not config.rescale_init:
        raise UserError(f"--rescale-rule {config.rescale_rule} is not used without "
                        "--rescale-init N")
    if config.ghost_form != "identity" and not config.ghost_skip:
        raise UserError(f"--ghost-form {config.ghost_form} is not used without --ghost-skip K")
    if config.ghost_form == "branch" and not method_cls.trains_weights:
        raise UserError(f"--ghost-form branch trains its branches; method {method_cls.name!r} "
                        "trains no weights; allowed: --ghost-form identity")


class Tricks:
    """The tricks of one run, applied by the engine around the method."""

    def __init__(self, config):
        self.config = config
        self.ghost = GhostActivation()
        #: The trainable ghost branches (``ghost_form="branch"``), once made.
        self.branches: nn.ModuleDict | None = None

    def prepare(self, model: nn.Module) -> None:
        """Give ``model`` its ghost branches (``ghost_form="branch"``), before
        the optimiser is built: one ``BatchNorm1d(Linear)`` per hidden-to-
        hidden layer, weights at :data:`GHOST_BRANCH_INIT`, trained, unmasked."""
        if self.config.ghost_form != "branch":
            return
        width, device = self.config.hidden, next(model.parameters()).device
        self.branches = nn.ModuleDict()
        for i in range(1, len(model.hidden)):  # hidden layers fed a hidden state
            lin = nn.Linear(width, width, bias=False)
            nn.init.constant_(lin.weight, GHOST_BRANCH_INIT)
            self.branches[str(i)] = nn.Sequential(lin, nn.BatchNorm1d(width))
        model.set_ghost_branches(self.branches.to(device))

    @property
    def active(self) -> bool:
        c = self.config
        return bool(c.ghost_soft or c.ghost_skip or c.rescale_init)

    def on_epoch_start(self, epoch: int, model: nn.Module) -> None:
        c = self.config
        # through the model's declared interface (DeepGNN.set_activation/set_ghost_skip)
        if c.ghost_soft and epoch <= c.ghost_soft:
            if epoch < c.ghost_soft:
                self.ghost.level = epoch / c.ghost_soft
                model.set_activation(self.ghost)
            else:
                model.set_activation(nn.ReLU())
        if c.ghost_skip and self.branches is not None:  # kept until epoch K, then dropped
            model.set_ghost_branches(self.branches if epoch < c.ghost_skip else None)
        elif c.ghost_skip:
            model.set_ghost_skip(max(0.0, 1.0 - epoch / c.ghost_skip))

    def _model_at(self, epoch: int) -> tuple:
        """What the tricks make of the model during ``epoch``."""
        c = self.config
        soft = epoch / c.ghost_soft if epoch < c.ghost_soft else None
        if self.branches is not None:
            return soft, epoch < c.ghost_skip
        return soft, max(0.0, 1.0 - epoch / c.ghost_skip) if c.ghost_skip else 0.0

    def selectable(self, epoch: int) -> bool:
        """Whether the model after ``epoch`` is the model the run ends with
        (the final model may only be chosen among those: a state trained
        with a ghost component active is not evaluated without it)."""
        return self._model_at(epoch) == self._model_at(self.config.epochs - 1)

    @torch.no_grad()
    def rescale(self, model: nn.Module, method, data) -> dict[str, float]:
        """Rescale every trainable weight tensor until its module's output has
        unit standard deviation (at most ``rescale_init`` passes each);
        returns the factor applied to each."""
        passes = self.config.rescale_init
        if not passes:
            return {}
        if self.config.rescale_rule == "gradinit":
            return gradinit(model, method, data, passes)
        training = model.training
        model.eval()  # no dropout
        factors = {}
        for name, p in model.named_parameters():
            if not p.requires_grad or p.dim() < 2:
                continue
            owner = name.split(".parametrizations.")[0] if ".parametrizations." in name \
                else name.rpartition(".")[0]
            seen: list[float] = []
            factor = 1.0
            handle = None
            try:
                # The module whose output is measured: the tensor's owner, or the
                # nearest ancestor that is called (a GCN layer may apply its
                # ``lin`` weight without calling ``lin``, e.g. on sparse input).
                path = owner.split(".") if owner else []
                while True:
                    seen.clear()
                    handle = model.get_submodule(".".join(path)).register_forward_hook(
                        lambda m, args, out, seen=seen: seen.append(float(out.std())))
                    model(*method.inputs(data))
                    if seen or not path:
                        break
                    handle.remove()
                    path = path[:-1]
                for _ in range(passes):
                    std = seen[0] if seen else 1.0
                    if not std > 0 or abs(std - 1.0) < RESCALE_TOLERANCE:
                        break
                    p.div_(std)
                    factor /= std
                    seen.clear()
                    model(*method.inputs(data))
            finally:
                if handle is not None:
                    handle.remove()
            factors[name] = factor
        model.train(training)
        return factors

    def export(self) -> dict[str, Any]:
        c = self.config
        out = {k: getattr(c, k) for k in ("ghost_soft", "ghost_skip", "rescale_init")
               if getattr(c, k)}
        if c.ghost_skip:
            out["ghost_form"] = c.ghost_form
        if c.rescale_init:
            out["rescale_rule"] = c.rescale_rule
        return out


@torch.enable_grad()  # Tricks.rescale runs under no_grad
def gradinit(model: nn.Module, method, data, steps: int) -> dict[str, float]:
    """Fit one scale per trained tensor by GradInit (see the module
    docstring) for ``steps`` steps and apply it in place; returns the scales.

    Masks stay: a masked entry receives no gradient and is scaled with the
    rest of its tensor, so it stays zero."""
    from torch.func import functional_call

    named = [(n, p) for n, p in model.named_parameters()
             if p.requires_grad and float(p.detach().norm()) > 0]
    if not named:
        return {}
    initial = [p.detach().clone() for _, p in named]
    scales = torch.ones(len(named), dtype=torch.float64, requires_grad=True)
    floors = torch.tensor([GRADINIT_MIN_SCALE if p.dim() > 1 else 0.0 for _, p in named],
                          dtype=torch.float64)
    opt = torch.optim.Adam([scales], lr=GRADINIT_LR)
    train, y = data.train_mask, data.y
    args = method.inputs(data)
    training = model.training
    model.eval()

    def loss_at(weights):
        params = {n: w for (n, _), w in zip(named, weights)}
        return F.cross_entropy(functional_call(model, params, args)[train], y[train])

    try:
        for _ in range(steps):
            opt.zero_grad()
            weights = [s.to(w0.dtype) * w0 for s, w0 in zip(scales, initial)]
            grads = torch.autograd.grad(loss_at(weights), weights, create_graph=True,
                                        allow_unused=True, materialize_grads=True)
            norm = torch.sqrt(sum((g * g).sum() for g in grads))
            if bool(norm.detach() > GRADINIT_GAMMA):  # first bring the gradient norm down
                objective = norm
            else:
                ahead = [w - GRADINIT_ETA * g / norm for w, g in zip(weights, grads)]
                objective = loss_at(ahead) / GRADINIT_ETA
            objective.backward()
            scales.grad.clamp_(-1.0, 1.0)
            opt.step()
            with torch.no_grad():
                scales.copy_(torch.maximum(scales, floors))
    finally:
        model.train(training)
    with torch.no_grad():
        for (_, p), s, w0 in zip(named, scales.detach(), initial):
            p.copy_(s.to(w0.dtype) * w0)
    return {n: float(s) for (n, _), s in zip(named, scales.detach())}
