"""Deep GNN stacks built from PyTorch Geometric's own convolution layers.

A :class:`DeepGNN` with ``L`` layers computes, for ``l = 1..L``,

.. math::

    h^{(l)} = \\rho\\big(\\mathrm{norm}(\\mathrm{conv}_l(\\mathrm{drop}(h^{(l-1)}),
              \\mathcal{G}))\\big) + \\mathrm{res}(h^{(l-1)}, h^{(1)}),
    \\qquad h^{(0)} = x,

where the last layer has no normalisation, activation or residual and returns
the class logits. ``res`` is 0 (``residual="none"``), ``h^{(l-1)}`` (``"plain"``,
when widths match) or the initial-residual mix
``h = (1-\\alpha)\\,\\rho(\\ldots) + \\alpha\\,h^{(1)}`` (``"initial"``, as in
APPNP/GCNII, Chen et al. 2020).

GCN-family models (``gcn``, ``gcnii``, ``jknet``, ``resgcn`` and the
predict-then-propagate ``appnp``, ``dagnn``, ``gprgnn``) normalise the adjacency
once per forward pass, :math:`\\hat A = \\tilde D^{-1/2}(A+I)\\tilde D^{-1/2}`
(Kipf & Welling 2017), and propagate through a CSR sparse matrix: on CPU this is
several times faster than scattering over ``edge_index`` in every layer. They
also build the transpose once per pass (:class:`Adjacency`), so the backward
pass of each layer does not re-transpose (sort) the matrix (figures in
docs/RESULTS.md).

Masks are never baked in: attach them from outside with
:func:`gnnmask.masks.mask_model`.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import DiffGroupNorm, GCNConv, PairNorm
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import is_sparse, to_torch_csr_tensor

from gnnmask.errors import UserError, check_choice
from gnnmask.registry import Registry, first_sentence, resolve

ACTIVATIONS = Registry("activation", {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
})
NORMS = Registry("norm", {
    "none": "No normalisation.",
    "batch": "Batch normalisation over the nodes (Ioffe & Szegedy 2015).",
    "pair": "PairNorm (Zhao & Akoglu 2020): centre, then rescale to a constant total norm.",
    "layer": "Layer normalisation of each node's features (Ba et al. 2016).",
    "group": "Differentiable group normalisation (Zhou et al. 2020): PyG's DiffGroupNorm, "
             "10 soft groups, skip weight 0.01.",
})
RESIDUALS = Registry("residual", {
    "none": "No residual connection.",
    "plain": "Add each hidden layer's input to its output (He et al. 2016), equal widths.",
    "initial": "Mix in the first hidden state, (1 - alpha) h + alpha h1 (Chen et al. 2020).",
})


@contextlib.contextmanager
def _quiet_csr():
    """Silence torch's "sparse CSR support is in beta" and "invariant checks
    are implicitly disabled" warnings for the CSR tensors gnnmask builds, in
    this block only (not through the process-wide filters)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse (CSR tensor support is in beta|"
                                "invariant checks are implicitly disabled)")
        yield


def _csr(edge_index: Tensor, weight: Tensor, size: tuple[int, int]) -> Tensor:
    """:func:`~torch_geometric.utils.to_torch_csr_tensor`, quietly (:func:`_quiet_csr`)."""
    with _quiet_csr():
        return to_torch_csr_tensor(edge_index, weight, size=size)


#: Whose degree normalises a GCN propagation (``degree``): ``in``, each node's
#: weighted in-degree (PyG's ``gcn_norm``); ``out``, its weighted out-degree,
#: the row sums of the adjacency ``A[source, target]`` (the UGS code's dense
#: normalisation). The two differ only on a directed or asymmetrically weighted
#: graph, e.g. under learnt edge masks.
DEGREES = ("in", "out")


def _flow(degree: str, edge_index) -> str:
    """PyG's ``gcn_norm`` flow for :data:`DEGREES` ``degree`` (``out``: the
    degree over the sources, ``target_to_source``)."""
    if degree == "in":
        return "source_to_target"
    if is_sparse(edge_index):
        raise UserError(f"degree {degree!r} needs the graph as an edge_index; allowed with a "
                        "sparse adjacency: degree 'in'")
    return "target_to_source"


def normalized_adjacency(edge_index, num_nodes: int, dtype=torch.float32,
                         edge_weight: Tensor | None = None, degree: str = "in") -> Tensor:
    """:math:`\\tilde D^{-1/2}(A+I)\\tilde D^{-1/2}` as a transposed CSR matrix
    (``A`` weighted by ``edge_weight`` when given; ``D`` the in-degrees, or
    the out-degrees with ``degree="out"``, :data:`DEGREES`).

    ``edge_index`` may be a ``[2, E]`` index tensor or an already sparse
    adjacency (``torch.sparse`` or ``torch_sparse.SparseTensor``); the latter is
    taken to be ``adj_t`` (PyG's transposed convention) and normalised as is.
    """
    flow = _flow(degree, edge_index)
    if is_sparse(edge_index):
        return gcn_norm(edge_index, num_nodes=num_nodes, dtype=dtype)[0]
    ei, w = gcn_norm(edge_index, edge_weight, num_nodes=num_nodes, dtype=dtype, flow=flow)
    # adj_t[i, j] carries the message j -> i.
    return _csr(ei.flip(0), w, (num_nodes, num_nodes))


class Adjacency(NamedTuple):
    """A normalised adjacency in PyG's transposed convention (``adj_t[i, j]``
    carries the message ``j -> i``) together with its transpose ``adj``."""

    adj_t: Tensor
    adj: Tensor


def gcn_adjacency(edge_index, num_nodes: int, dtype=torch.float32,
                  edge_weight: Tensor | None = None, degree: str = "in") -> Adjacency:
    """:func:`normalized_adjacency` and its transpose, both as CSR matrices."""
    flow = _flow(degree, edge_index)
    if is_sparse(edge_index):
        adj_t = normalized_adjacency(edge_index, num_nodes, dtype)
        return Adjacency(adj_t, adj_t.t().to_sparse_csr())
    ei, w = gcn_norm(edge_index, edge_weight, num_nodes=num_nodes, dtype=dtype, flow=flow)
    size = (num_nodes, num_nodes)
    return Adjacency(_csr(ei.flip(0), w, size), _csr(ei, w, size))


class _Propagate(torch.autograd.Function):
    """``adj_t @ x`` with the backward ``adj @ grad`` through the given transpose."""

    @staticmethod
    def forward(ctx, x: Tensor, adj_t: Tensor, adj: Tensor) -> Tensor:
        ctx.adj = adj
        return adj_t @ x

    @staticmethod
    def backward(ctx, grad: Tensor):
        return ctx.adj @ grad.to(ctx.adj.dtype), None, None


def propagate(x: Tensor, adj: Adjacency) -> Tensor:
    """:math:`\\hat A x` through :class:`_Propagate`; under mixed precision
    (autocast) the sparse product runs in the adjacency's dtype (CPU sparse
    kernels take no half precision)."""
    with torch.autocast(x.device.type, enabled=False):
        return _Propagate.apply(x.to(adj.adj_t.dtype), adj.adj_t, adj.adj)


class GCNLayer(GCNConv):
    """PyG's :class:`~torch_geometric.nn.conv.GCNConv` (``normalize=False``)
    that also accepts an :class:`Adjacency`:
    :math:`h' = \\hat A\\,(h W^\\top) + b` with a backward pass through the
    precomputed transpose. Any other graph input takes ``GCNConv``'s own path;
    parameters and ``state_dict`` keys are ``GCNConv``'s."""

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None) -> Tensor:
        if x.layout == torch.sparse_csr:  # sparse input features: see sparse_linear
            x = sparse_linear(x, self.lin.weight)
            if not isinstance(edge_index, Adjacency):
                return self.propagate(edge_index, x=x, edge_weight=edge_weight) + (
                    0 if self.bias is None else self.bias)
            out = propagate(x, edge_index)
        elif not isinstance(edge_index, Adjacency):
            return super().forward(x, edge_index, edge_weight)
        else:
            out = propagate(self.lin(x), edge_index)
        return out + self.bias if self.bias is not None else out


class _SparseLinear(torch.autograd.Function):
    """``x W^T`` for a sparse CSR ``x`` without gradient: the backward
    ``dL/dW = (x^T G)^T`` multiplies the transposed (CSC) view of ``x``."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor) -> Tensor:
        ctx.x = x
        return x @ weight.t()

    @staticmethod
    def backward(ctx, grad: Tensor):
        return None, (ctx.x.t() @ grad).t()


def sparse_linear(x: Tensor, weight: Tensor) -> Tensor:
    """``x W^T`` for sparse CSR input features ``x`` (bag-of-words features
    are ~1% non-zero): the first layer's cost scales with the non-zeros of
    ``x`` instead of its size (figures in docs/RESULTS.md). In ``x``'s dtype,
    also under autocast."""
    with torch.autocast(x.device.type, enabled=False):
        return _SparseLinear.apply(x, weight.to(x.dtype))


def sparse_features(x: Tensor, max_density: float = 0.05) -> Tensor:
    """``x`` as a CSR tensor when at most ``max_density`` of it is non-zero
    (what :class:`DeepGNN` GCN layers consume fastest), else ``x`` itself."""
    if x.layout != torch.strided or x.numel() == 0:
        return x
    if int(torch.count_nonzero(x)) > max_density * x.numel():
        return x
    with _quiet_csr():
        return x.to_sparse_csr()


class _BoolMaskDropout(torch.autograd.Function):
    """Inverted dropout that keeps a boolean mask (1 byte per entry) and draws
    it with one ``rand`` pass: on the CPU faster than
    :func:`torch.nn.functional.dropout`, whose Bernoulli sampler dominates a
    deep GCN's step time. The mask is applied as a product with the boolean
    tensor, not with ``torch.where``, which branches per entry on the CPU
    (figures in docs/RESULTS.md)."""

    @staticmethod
    def forward(ctx, x: Tensor, p: float) -> Tensor:
        keep = torch.rand(x.shape, device=x.device) >= p  # P(keep) = 1 - p
        ctx.save_for_backward(keep)
        ctx.scale = 1.0 / (1.0 - p)
        return torch.mul(x, keep).mul_(ctx.scale)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (keep,) = ctx.saved_tensors
        return torch.mul(grad, keep).mul_(ctx.scale), None


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Inverted dropout, ``x * m / (1 - p)`` with ``m_i ~ Bernoulli(1 - p)``:
    :func:`torch.nn.functional.dropout` on accelerators, a faster sampler of the
    same distribution on the CPU (:class:`_BoolMaskDropout`). For sparse CSR
    features only the stored entries are drawn (the zeros stay zero either
    way)."""
    if not training or p == 0.0:
        return x
    if x.layout == torch.sparse_csr:  # input features: drop among the stored entries
        values = x.values()
        keep = torch.rand(values.shape, device=values.device) >= p
        with _quiet_csr():
            return torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(),
                                           values * keep / (1.0 - p), x.shape)
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training)
    return _BoolMaskDropout.apply(x, p)


def norm_layer(kind: str, dim: int) -> nn.Module:
    """The normalisation ``kind`` (one of :data:`NORMS`) of width ``dim``."""
    if kind == "batch":
        return nn.BatchNorm1d(dim)
    if kind == "pair":
        return PairNorm()
    if kind == "layer":
        return nn.LayerNorm(dim)
    if kind == "group":
        return DiffGroupNorm(dim, groups=DIFF_GROUPS, lamda=DIFF_GROUP_LAMBDA)
    return nn.Identity()


#: DiffGroupNorm's soft groups and skip weight (the DGN paper tunes both per
#: dataset; 10 groups is its Cora setting, 0.01 PyG's default skip weight).
DIFF_GROUPS, DIFF_GROUP_LAMBDA = 10, 0.01


class AdjDtype:
    """Mixin for PyG convolutions that multiply a sparse ``adj_t``: the sparse
    product runs with autocast off, in the adjacency's dtype, so mixed
    precision works on CPU too (CPU sparse kernels take no half precision)."""

    def message_and_aggregate(self, adj_t, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return super().message_and_aggregate(adj_t, x.to(adj_t.dtype))


#: The depths a backbone may have (``layers``), stated once for the library,
#: the configuration and the command line.
MAX_LAYERS = 128

#: Registry: model name -> :class:`DeepGNN` subclass, filled as each backbone
#: class is defined (one class in one file under :mod:`gnnmask.models`).
MODELS: Registry = Registry("--model")

#: Model options a backbone may give a default of its own (``DeepGNN.defaults``):
#: those a run configuration leaves unset until the method's or the model's
#: default fills them; every other option has one default for all backbones.
OWN_DEFAULTS = ("dropout", "bias")

#: Model options and their defaults (the values a model that does not read an
#: option accepts for it).
OPTIONS = dict(dropout=0.5, activation="relu", bias=True, norm="none", residual="none",
               heads=1, output_heads=1, alpha=0.1, theta=0.5, attention_dropout=0.0, jk="cat",
               jk_dropout="inputs", aggr="sum", degree="in", conv_init="glorot",
               gat_dropout="inputs")


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def check_shape(layers, hidden, spell=lambda key: key, **dims) -> None:
    """Raise :class:`~gnnmask.errors.UserError` unless ``layers`` is an integer
    ``1..MAX_LAYERS`` and ``hidden`` (and any other width in ``dims``, e.g.
    ``in_dim``) a positive integer: the bounds every backbone and the run
    configuration share; ``spell`` names a value in the message."""
    if not _positive_int(layers) or layers > MAX_LAYERS:
        raise UserError(f"{spell('layers')} {layers!r} is out of range; allowed: an integer "
                        f"1..{MAX_LAYERS}")
    for what, value in {"hidden": hidden, **dims}.items():
        if not _positive_int(value):
            raise UserError(f"{spell(what)} {value!r} is invalid; allowed: a positive integer")


class DeepGNN(nn.Module):
    """Base class of gnnmask's depth-``layers`` node classifiers: a subclass
    is one backbone, builds its own layers and declares the options it reads.

    The base implementation is a stack of ``layers`` convolutions (the first
    maps ``in_dim -> hidden``, the last ``hidden -> out_dim`` and returns the
    logits), each one made by :meth:`init_conv`, with normalisation,
    activation and residual between them (module docstring).

    Args:
        in_dim, hidden, out_dim: input, hidden and output widths.
        layers: number of message-passing layers (1..:data:`MAX_LAYERS`).
        dropout: dropout probability before each layer.
        activation: one of :data:`ACTIVATIONS`.
        bias: whether layers have biases (mask-only methods turn them off).
        norm: ``none``, ``batch``, ``pair`` (PairNorm) or ``layer``, after
            every hidden layer.
        residual: ``none``, ``plain`` or ``initial`` (see the module docstring).
        heads: attention heads of hidden layers (``gat``).
        output_heads: attention heads of the output layer, averaged (``gat``).
        alpha: initial-residual / teleport weight (``initial``, ``gcnii``,
            ``appnp``).
        theta: GCNII's identity-mapping strength.
        attention_dropout: GAT's dropout on the normalised attention
            coefficients (in training).
        jk: JKNet's layer aggregation (``cat``, ``max``, ``lstm``).
        jk_dropout: where JKNet drops (``inputs``, ``outputs``; see
            :class:`~gnnmask.models.jknet.JKNet`).
        aggr: GIN's neighbourhood aggregation (``sum``, ``mean``, ``max``).
        degree: whose degree normalises a GCN propagation (:data:`DEGREES`;
            ``gcn``).
        conv_init: initialisation of GCNII's convolution weights (``glorot``,
            ``uniform``; see :class:`~gnnmask.models.gcnii.GCNII`).
        gat_dropout: where GAT drops (``inputs``, ``heads``; see
            :class:`~gnnmask.models.gat.GAT`).

    An option the backbone does not read (:attr:`reads`) must keep its default
    (:data:`OPTIONS`); anything else is a :class:`~gnnmask.errors.UserError`.

    Subclasses set :attr:`name` (registering the class in :data:`MODELS`),
    :attr:`reads`, and override :meth:`init_conv`, or :meth:`build_layers` and
    :meth:`forward` for another layout.
    """

    #: Registry name; a subclass that sets it is registered in :data:`MODELS`.
    name: ClassVar[str] = ""
    #: The options of :data:`OPTIONS` this backbone reads.
    reads: ClassVar[tuple[str, ...]] = ("dropout", "activation", "bias", "norm", "residual",
                                        "alpha")
    #: Defaults of its own for options it reads, where its paper differs from
    #: :data:`OPTIONS` (e.g. SGC's ``dropout`` 0); a run configuration's
    #: unset field takes these before the method's and the global ones.
    defaults: ClassVar[dict[str, Any]] = {}
    #: Of :attr:`reads`, those read whatever the other options (the base
    #: class reads ``alpha`` only for ``residual="initial"``).
    always_reads: ClassVar[tuple[str, ...]] = ()
    #: The ``residual`` values it supports.
    residuals: ClassVar[tuple[str, ...]] = tuple(RESIDUALS)
    #: Options of its own that take one of a fixed set of values (e.g. JKNet's
    #: ``jk``): each is checked against its set.
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: Graph input of every layer: ``"edges"`` (``edge_index``) or ``"gcn"``
    #: (:func:`gcn_adjacency`, the normalised adjacency and its transpose).
    graph_input: ClassVar[str] = "edges"
    #: Whether the first layer consumes sparse CSR input features
    #: (:func:`sparse_features`).
    sparse_input: ClassVar[bool] = False
    #: Whether the message-passing layers (``convs``) may be decayed apart from
    #: the linear input and output layers (``--conv-weight-decay``).
    conv_decay: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for key in cls.defaults:
            if key not in cls.reads or key not in OWN_DEFAULTS:
                raise TypeError(f"{cls.__name__}.defaults sets {key!r}; allowed: options "
                                f"it reads of {', '.join(OWN_DEFAULTS)}")
        if cls.__dict__.get("name"):
            MODELS.register(cls)

    @classmethod
    def summary(cls) -> str:
        """The first sentence of the class docstring."""
        return first_sentence(cls.__doc__)

    @property
    def edge_weights(self) -> bool:
        """Whether :meth:`forward` takes ``edge_weight`` (GCN propagations)."""
        return self.graph_input != "edges"

    @classmethod
    def check_options(cls, options: dict, spell=lambda key: key,
                      hidden: int | None = None) -> None:
        """Refuse an option this backbone does not read set to anything but its
        default, and an unsupported ``residual`` (or, in a subclass, a value
        that does not fit ``hidden``); ``spell`` names an option in the message
        (e.g. as a command-line flag)."""
        for key, allowed in (("activation", ACTIVATIONS), ("norm", NORMS),
                             ("residual", RESIDUALS)):
            if key in options:
                check_choice(spell(key), options[key], allowed)
        for key, value in options.items():
            if key not in OPTIONS:
                raise UserError(f"unknown model option {key!r}; allowed: {', '.join(OPTIONS)}")
            if key not in cls.reads and value != OPTIONS[key]:
                raise UserError(f"{spell(key)} {value!r} is not read by model {cls.name!r}; "
                                f"it reads: {', '.join(cls.reads)}")
        for key, allowed in cls.choices.items():
            value = options.get(key, OPTIONS[key])
            if value not in allowed:
                raise UserError(f"{spell(key)} {value!r} is invalid; allowed: "
                                f"{', '.join(allowed)}")
        residual = options.get("residual", OPTIONS["residual"])
        if "residual" in cls.reads and residual not in cls.residuals:
            raise UserError(f"{spell('residual')} {residual!r} is not supported by model "
                            f"{cls.name!r}; allowed: {', '.join(cls.residuals)}")
        alpha = options.get("alpha", OPTIONS["alpha"])
        theta = options.get("theta", OPTIONS["theta"])
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
            raise UserError(f"{spell('alpha')} {alpha!r} is invalid; allowed: 0 <= alpha <= 1")
        if isinstance(theta, bool) or not isinstance(theta, (int, float)) or not theta > 0:
            raise UserError(f"{spell('theta')} {theta!r} is invalid; allowed: a number > 0")
        if alpha != OPTIONS["alpha"] and "residual" in cls.reads and "alpha" not in \
                cls.always_reads and residual != "initial":
            raise UserError(f"{spell('alpha')} {alpha!r} is read by model {cls.name!r} only "
                            f"with {spell('residual')} initial")

    def __init__(self, in_dim: int, hidden: int, out_dim: int, layers: int, **options):
        super().__init__()
        if not self.name:
            raise UserError("DeepGNN is a base class; allowed: a registered backbone, "
                            f"{', '.join(MODELS)} (build_model(name, ...))")
        check_shape(layers, hidden, in_dim=in_dim, out_dim=out_dim)
        self.check_options(options, hidden=hidden)
        o = {**OPTIONS, **self.defaults, **options}
        self.config = dict(name=self.name, in_dim=in_dim, hidden=hidden, out_dim=out_dim,
                           layers=layers, **o)
        self.num_layers = layers
        self.dropout, self.residual, self.alpha = o["dropout"], o["residual"], o["alpha"]
        self.act = ACTIVATIONS[o["activation"]]()
        #: Weight of the ghost skip (:meth:`set_ghost_skip`); 0 is the plain model.
        self.ghost_skip = 0.0
        #: Trainable ghost branches (:meth:`set_ghost_branches`); None: the plain model.
        self.ghost_branches: nn.ModuleDict | None = None
        n_hidden = self.build_layers(in_dim, hidden, out_dim, layers, o)
        self.norms = nn.ModuleList(norm_layer(o["norm"], hidden) for _ in range(n_hidden))
        # Identity "taps" mark each layer's final hidden state and the logits, so
        # forward hooks (gnnmask.metrics.trace) capture post-activation,
        # post-residual states. They hold no parameters.
        self.hidden = nn.ModuleList(nn.Identity() for _ in range(n_hidden))
        self.logits = nn.Identity()

    def build_layers(self, in_dim: int, hidden: int, out_dim: int, layers: int,
                     options: dict) -> int:
        """Create the message-passing layers (``self.convs``); return the
        number of hidden states they produce (one normalisation each)."""
        dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
        self.convs = nn.ModuleList(
            self.init_conv(dims[i], dims[i + 1], last=i == layers - 1, options=options)
            for i in range(layers))
        return layers - 1

    def init_conv(self, in_dim: int, out_dim: int, *, last: bool, options: dict) -> nn.Module:
        """One convolution ``in_dim -> out_dim`` (``last``: the output layer)."""
        raise NotImplementedError

    def export_steps(self, ex) -> None:
        """Write this backbone's inference pass into ``ex`` (a
        :class:`gnnmask.export.Exporter`): steps from register ``x`` (the
        node features) to ``out`` (the logits), with the weights as they are
        now (masks applied). Backbones that cannot be exported leave it
        unimplemented, and ``gnnmask export`` refuses them."""
        raise NotImplementedError

    def set_activation(self, act: nn.Module) -> None:
        """Use ``act`` as the activation between layers (training tricks anneal
        it: ``gnnmask.train.tricks``, ghost soft neurons)."""
        self.act = act

    def set_ghost_skip(self, weight: float) -> None:
        """Weight of an extra identity skip ``h_l += weight * h_(l-1)`` between
        hidden layers of equal width (``gnnmask.train.tricks``, ghost skip
        connections; 0 is the plain model)."""
        self.ghost_skip = float(weight)

    def set_ghost_branches(self, branches: nn.ModuleDict | None) -> None:
        """Modules ``b_l`` (keyed ``str(l)``) adding ``b_l(h_(l-1))`` to hidden
        layer ``l``'s output where its input has the same width
        (``gnnmask.train.tricks``, the ToST code's ghost branches); ``None``
        removes them."""
        self.ghost_branches = branches

    def reset_parameters(self):
        """Re-draw every parameter with its layer's own initialiser."""
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def trace_modules(self) -> list[nn.Module]:
        """Modules whose outputs are the successive layer outputs (for tracing):
        every hidden state ``h^(1) .. h^(L-1)``, then the logits."""
        return [*self.hidden, self.logits]

    def graph(self, x: Tensor, edge_index, edge_weight: Tensor | None = None) -> tuple:
        """The graph arguments every layer is called with."""
        n = x.size(0)
        if edge_weight is not None and not self.edge_weights:
            raise UserError(f"model {self.name!r} takes no edge weights; allowed: "
                            f"{', '.join(edge_weight_models())}")
        degree = self.config["degree"]
        if edge_weight is not None and edge_weight.requires_grad:
            # differentiable in the edge weights (e.g. learnt edge masks): PyG's
            # message passing over the normalised, weighted edges
            return gcn_norm(edge_index, edge_weight, num_nodes=n, dtype=x.dtype,
                            flow=_flow(degree, edge_index))
        if self.graph_input == "gcn":
            return (gcn_adjacency(edge_index, n, x.dtype, edge_weight, degree),)
        return (edge_index,)

    def mix(self, h: Tensor, prev: Tensor, first: Tensor | None, index: int = 0) -> Tensor:
        """The residual of hidden layer ``index``: ``h`` with ``prev`` (the
        layer's input) or ``first`` (the first hidden state) mixed in, and the
        ghost skip or branch."""
        if self.residual == "plain" and h.shape == prev.shape:
            h = h + prev
        elif self.residual == "initial" and first is not None:
            h = (1 - self.alpha) * h + self.alpha * first
        if self.ghost_skip and h.shape == prev.shape:  # see the ghost_skip attribute
            h = h + self.ghost_skip * prev
        if self.ghost_branches is not None and str(index) in self.ghost_branches:
            h = h + self.ghost_branches[str(index)](prev)
        return h

    def forward(self, x: Tensor, edge_index, edge_weight: Tensor | None = None,
                return_hidden: bool = False):
        """Class logits ``[N, out_dim]``; with ``return_hidden=True`` also the
        list of hidden states ``[x, h^(1), ..., h^(L-1)]`` (inputs of each layer
        after the first, i.e. every intermediate representation).
        ``edge_weight`` (GCN propagations only) weights the edges before the
        normalisation; gradients reach it."""
        graph = self.graph(x, edge_index, edge_weight)
        hidden = [x]
        h, first = x, None
        for i, conv in enumerate(self.convs):
            z = conv(dropout(h, self.dropout, self.training), *graph)
            if i == len(self.convs) - 1:
                out = self.logits(z)
                break
            new = self.act(self.norms[i](z))
            h = self.hidden[i](self.mix(new, h, first, i))
            first = h if first is None else first
            if return_hidden:  # else every layer's state would stay alive to the end
                hidden.append(h)
        return (out, hidden) if return_hidden else out

    def __repr__(self) -> str:
        c = self.config
        read = ", ".join(f"{k}={c[k]}" for k in self.reads if k != "dropout")
        return (f"{type(self).__name__}({c['in_dim']} -> {c['hidden']} x {c['layers']} -> "
                f"{c['out_dim']}, {read}, dropout={c['dropout']})")


def edge_weight_models() -> list[str]:
    """The registered backbones whose forward takes ``edge_weight`` (GCN
    propagations)."""
    return [name for name, cls in MODELS.items() if cls.graph_input != "edges"]


def get_model_class(name) -> type[DeepGNN]:
    """The backbone class registered as ``name`` (a class is returned as is)."""
    return resolve(MODELS, name)


def build_model(
    name: str, in_dim: int, hidden: int, out_dim: int, layers: int, **options
) -> DeepGNN:
    """Build the backbone registered as ``name`` (see :class:`DeepGNN` for
    ``options``; each backbone refuses one it does not read)."""
    return get_model_class(name)(in_dim, hidden, out_dim, layers, **options)
