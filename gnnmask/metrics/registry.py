"""Name -> metric registry and :func:`compute_metrics`."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from functools import partial

from torch import Tensor

from gnnmask.errors import UserError, check_choice
from gnnmask.registry import Registry

from ._common import as_graph, check_x
from .distance import group_distance_ratio, mad, mad_gap, smv
from .energy import dirichlet_energy, mean_norm
from .rank import effective_rank, gram_singular_values, numerical_rank

__all__ = ["METRICS", "compute_metrics"]

#: Every metric by name. Signatures differ (see each function); use
#: :func:`compute_metrics` to call them uniformly.
METRICS: Registry = Registry("metric", {
    "mad": mad,
    "mad_gap": mad_gap,
    "dirichlet": dirichlet_energy,
    "dirichlet_normalized": partial(dirichlet_energy, normalized=True),
    "smv": smv,
    "group_distance_ratio": group_distance_ratio,
    "effective_rank": effective_rank,
    "numerical_rank": numerical_rank,
    "norm": mean_norm,
})
_GRAPH = {"mad", "mad_gap", "dirichlet", "dirichlet_normalized"}  # take edge_index 2nd
_NEEDS_GRAPH = _GRAPH - {"mad"}  # mad only needs it for target neighbors/remote
_LABELS = {"group_distance_ratio"}  # take y 2nd
_SPECTRAL = {"effective_rank", "numerical_rank"}  # share one Gram decomposition


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
        allowed = [p for p in list(inspect.signature(METRICS[name]).parameters)[1:]
                   if p not in ("edge_index", "y", "singular_values")]
        for key in kwargs:
            check_choice(f"option of metric {name!r}", key, allowed)
    graph = None if edge_index is None else as_graph(edge_index, x.shape[0], x.device)
    out = {}
    spectrum = None
    for name in names:
        fn, kwargs = METRICS[name], options.get(name, {})
        if name in _SPECTRAL and x.numel():
            spectrum = gram_singular_values(x) if spectrum is None else spectrum
            kwargs = {**kwargs, "singular_values": spectrum}
        if name in _LABELS:
            if y is not None:
                out[name] = fn(x, y, **kwargs)
        elif name in _GRAPH:
            if graph is None and name in _NEEDS_GRAPH:
                if explicit:
                    raise UserError(f"metric {name!r} needs edge_index; got None")
                continue
            out[name] = fn(x, graph, **kwargs)
        else:
            out[name] = fn(x, **kwargs)
    return out
