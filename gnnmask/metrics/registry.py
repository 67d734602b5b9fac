"""Name -> metric registry and :func:`compute_metrics`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial

from torch import Tensor

from gnnmask.errors import UserError, check_choice
from gnnmask.registry import Registry, first_sentence

from ._common import as_graph, check_x
from .distance import group_distance_ratio, mad, mad_gap, smv
from .energy import dirichlet_energy, mean_norm
from .rank import effective_rank, gram_singular_values, numerical_rank

__all__ = ["METRICS", "Metric", "compute_metrics", "default_metrics"]

@dataclass(frozen=True)
class Metric:
    """A registered metric: its function and what a caller needs to know of it.

    Attributes:
        fn: the pure function, ``fn(x, ...) -> float``.
        label: its display name (tables, plot axes).
        second: what ``fn`` takes after ``x``: ``None``, ``"graph"`` (the
            edges) or ``"labels"`` (``y``).
        needs_graph: whether the graph is required (``mad`` takes it only for
            a ``neighbors``/``remote`` target).
        default: whether per-layer traces record it by default (``mad_gap``'s
            hop distances cost seconds per layer even on Cora).
        spectral: whether it reads the singular values (one decomposition
            serves all such metrics, :func:`compute_metrics`).
        doc: its one-sentence description, when the function's docstring
            does not start with it (a variant of a function).
    """

    fn: Callable[..., float]
    label: str
    second: str | None = None
    needs_graph: bool = False
    default: bool = True
    spectral: bool = False
    doc: str | None = None

    def __call__(self, *args, **kwargs) -> float:
        return self.fn(*args, **kwargs)

    def summary(self) -> str:
        """:attr:`doc`, else the first sentence of the function's docstring."""
        return self.doc or first_sentence(getattr(self.fn, "func", self.fn).__doc__)


#: Every metric by name (:class:`Metric`). Signatures differ (see each
#: function); use :func:`compute_metrics` to call them uniformly.
METRICS: Registry = Registry("metric", {
    "mad": Metric(mad, "MAD", "graph"),
    "mad_gap": Metric(mad_gap, "MADGap", "graph", needs_graph=True, default=False),
    "dirichlet": Metric(dirichlet_energy, "Dirichlet energy", "graph", needs_graph=True),
    "dirichlet_normalized": Metric(partial(dirichlet_energy, normalized=True),
                                   "normalised Dirichlet energy", "graph", needs_graph=True,
                                   doc="Dirichlet energy with the augmented normalised "
                                       "Laplacian, tr(X^T L~ X) (Cai & Wang 2020)."),
    "smv": Metric(smv, "SMV"),
    "group_distance_ratio": Metric(group_distance_ratio, "group distance ratio", "labels"),
    "group_distance_ratio_paper": Metric(
        partial(group_distance_ratio, form="paper"), "group distance ratio (paper's Eq.)",
        "labels", default=False,
        doc="Group distance ratio as the DGN paper's equation writes it (Zhou et al. 2020): "
            "class-pair means of inter-class distances."),
    "effective_rank": Metric(effective_rank, "effective rank", spectral=True),
    "numerical_rank": Metric(numerical_rank, "numerical rank", spectral=True),
    "norm": Metric(mean_norm, "mean norm"),
})


def default_metrics() -> tuple[str, ...]:
    """The metrics per-layer traces record by default (``Metric.default``)."""
    return tuple(name for name, m in METRICS.items() if m.default)


def compute_metrics(x: Tensor, edge_index=None, y: Tensor | None = None,
                    names: Iterable[str] | str | None = None,
                    options: Mapping[str, Mapping] | None = None) -> dict[str, float]:
    """Evaluate several metrics of ``x`` at once; returns ``{name: value}``.

    Args:
        x: node features ``[N, d]``.
        edge_index: ``[2, E]`` edges (or a prepared :class:`Graph`); needed by
            ``mad_gap`` and both ``dirichlet`` forms (and ``mad`` with a
            ``neighbors``/``remote`` target). It is coalesced once for all.
            When ``None``, the default metric set leaves the graph metrics
            out; naming one of them is an error.
        y: class labels ``[N]``; label metrics (``group_distance_ratio``) are
            skipped when ``None``.
        names: metric names (default: all of :data:`METRICS`, in its order,
            less those whose inputs are missing).
        options: per-metric keyword arguments, e.g.
            ``{"mad": {"target": "remote"}, "smv": {"exact": True}}``.
    """
    x = check_x(x)
    explicit = names is not None
    names = list(METRICS) if names is None else [names] if isinstance(names, str) else list(names)
    options = dict(options or {})
    for name in [*names, *options]:
        check_choice("metric", name, METRICS)
    for name, kwargs in options.items():
        allowed = [p for p in list(inspect.signature(METRICS[name].fn).parameters)[1:]
                   if p not in ("edge_index", "y", "singular_values")]
        for key in kwargs:
            check_choice(f"option of metric {name!r}", key, allowed)
    graph = None if edge_index is None else as_graph(edge_index, x.shape[0], x.device)
    out = {}
    spectrum = None
    for name in names:
        metric, kwargs = METRICS[name], options.get(name, {})
        fn = metric.fn
        if metric.spectral and x.numel():
            spectrum = gram_singular_values(x) if spectrum is None else spectrum
            kwargs = {**kwargs, "singular_values": spectrum}
        if metric.second == "labels":
            if y is not None:
                out[name] = fn(x, y, **kwargs)
        elif metric.second == "graph":
            if graph is None and metric.needs_graph:
                if explicit:
                    raise UserError(f"metric {name!r} needs edge_index; got None")
                continue
            out[name] = fn(x, graph, **kwargs)
        else:
            out[name] = fn(x, **kwargs)
    return out
