"""Per-layer over-smoothing traces of a model's forward pass."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch_geometric.nn.conv import MessagePassing

from gnnmask.errors import UserError, check_arg

from ._common import as_graph, check_x
from .registry import compute_metrics

__all__ = ["trace", "format_table"]


def _layer_modules(model: nn.Module, layers) -> list[tuple[str, nn.Module]]:
    """``(path, module)`` pairs to hook, in the order given or found."""
    paths = {id(m): name for name, m in model.named_modules()}

    def named(m: nn.Module) -> tuple[str, nn.Module]:
        if not isinstance(m, nn.Module):
            raise UserError(f"layers must hold modules or module names; got {type(m).__name__}")
        return paths.get(id(m)) or type(m).__name__, m

    if isinstance(layers, str):
        if layers != "message_passing":
            raise UserError(f"unknown layers {layers!r}; allowed: 'message_passing' or a "
                            "list of modules / module names")
        own = getattr(model, "trace_modules", None)
        if callable(own):
            return [named(m) for m in own()]
        found: list[tuple[str, nn.Module]] = []
        outer: list[str] = []  # paths of the modules found so far
        for name, m in model.named_modules():  # parents come before children
            inside = any(p == "" or name.startswith(f"{p}.") for p in outer)
            if isinstance(m, MessagePassing) and not inside:
                outer.append(name)
                found.append((name or type(m).__name__, m))
        if not found:
            raise UserError(f"model {type(model).__name__} has no MessagePassing submodule; "
                            "pass layers=[modules or module names] to trace")
        return found
    picked = []
    for item in layers:
        if isinstance(item, str):
            try:
                picked.append((item, model.get_submodule(item)))
            except AttributeError:
                raise UserError(f"model has no submodule {item!r}") from None
        else:
            picked.append(named(item))
    return picked


def _labels(data, num_nodes: int) -> Tensor | None:
    """``data.y`` when it is one integer class label per node, else ``None``."""
    y = getattr(data, "y", None)
    if not isinstance(y, Tensor) or y.is_floating_point() or y.dtype == torch.bool:
        return None
    if y.dim() == 2 and y.shape[1] == 1:
        y = y.view(-1)
    return y if y.dim() == 1 and y.numel() == num_nodes and int(y.min()) >= 0 else None


def trace(model: nn.Module, data, metrics: Iterable[str] | None = None,
          layers: str | Sequence[str | nn.Module] = "message_passing",
          forward: Callable | None = None,
          options: Mapping[str, Mapping] | None = None,
          progress: Callable[[dict, float], None] | None = None,
          groups: Tensor | None = None) -> list[dict]:
    """Metrics of every layer's output during one forward pass.

    Runs ``model(data.x, data.edge_index)`` (or ``forward(model, data)``)
    once, in eval mode under ``torch.no_grad()``, and evaluates the metrics
    (:func:`compute_metrics`; ``metrics=None`` means all, with
    ``group_distance_ratio`` only when ``data.y`` holds integer class labels)
    on the input features and on the output of each traced module, as it is
    produced. ``options`` passes per-metric keyword arguments.
    ``progress(row, seconds)``, if given, is called after each row with the
    seconds its metrics took (e.g. to log progress on a large graph).

    Per graph: with ``groups`` (long ``[N]``, the graph of each node, e.g. a
    PyG ``Batch``'s ``batch`` vector for a disjoint union of graphs; ``-1``:
    a node left out), every metric is computed on each graph alone (its nodes and the edges among
    them) and the row holds the mean over the graphs where it is defined
    (``nan`` where it is defined on none).

    Traced modules (``layers``):

    * ``"message_passing"`` (default): ``model.trace_modules()`` if the model
      defines it (an ordered list of modules, e.g. post-activation states),
      otherwise every outermost :class:`~torch_geometric.nn.conv.MessagePassing`
      submodule (convs nested inside another traced conv are skipped);
    * or an explicit list of submodules or dotted submodule names.

    Module outputs that are tuples/lists contribute their first element,
    reshaped to ``[N, -1]``. A module called several times gives one row per
    call (``"name#2"``, ...). Hooks are removed and every submodule's
    ``training`` flag restored afterwards, also on error.

    Returns one row per layer in execution order, starting with layer 0 = the
    input: ``{"layer": i, "name": path, "dim": d, <metric>: value, ...}``.

    Cost: one :func:`compute_metrics` call per row; ``mad_gap`` (a BFS per
    source) is the most expensive. On large graphs pick ``metrics`` or pass
    ``options``, e.g. ``{"mad_gap": {"num_samples": 128}}``.
    """
    check_arg("trace", "model", model, nn.Module, "a torch.nn.Module, then the graph: "
              "trace(model, data)")
    if not all(hasattr(data, key) for key in ("x", "edge_index")):
        raise UserError(f"trace needs data with .x and .edge_index; got {type(data).__name__}")
    x = check_x(data.x)
    n = x.shape[0]
    graph = as_graph(data.edge_index, n, x.device)
    y = _labels(data, n)
    names = None if metrics is None else list(metrics)
    targets = _layer_modules(model, layers)

    parts = None if groups is None else _parts(groups, data.edge_index, n)

    def row(name: str, h: Tensor) -> dict:
        started = time.perf_counter()
        if parts is None:
            values = compute_metrics(h, graph, y, names, options)
        else:
            values = _mean_over(compute_metrics(h[nodes], sub, None, names, options)
                                for nodes, sub in parts)
        result = {"layer": len(rows), "name": name, "dim": h.shape[1], **values}
        if progress is not None:
            progress(result, time.perf_counter() - started)
        return result

    rows: list[dict] = []
    rows.append(row("input", x))
    calls: dict[str, int] = {}

    def hook_for(name: str):
        def hook(module, args, output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            if not isinstance(out, Tensor) or out.dim() == 0 or out.shape[0] != n:
                shape = list(out.shape) if isinstance(out, Tensor) else type(out).__name__
                raise UserError(f"layer {name!r} returned {shape}; tracing needs one row per "
                                f"node ([{n}, d])")
            calls[name] = calls.get(name, 0) + 1
            label = name if calls[name] == 1 else f"{name}#{calls[name]}"
            rows.append(row(label, out.detach().reshape(n, -1)))
        return hook

    flags = [(m, m.training) for m in model.modules()]
    handles = []
    try:
        handles = [m.register_forward_hook(hook_for(name)) for name, m in targets]
        model.eval()
        with torch.no_grad():
            if forward is None:
                model(data.x, data.edge_index)
            else:
                forward(model, data)
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags:
            m.training = flag
    return rows


def _parts(groups: Tensor, edge_index: Tensor, n: int) -> list[tuple[Tensor, object]]:
    """``(node indices, graph)`` of every group of nodes, its edges relabelled."""
    groups = torch.as_tensor(groups, device=edge_index.device).view(-1).long()
    if groups.numel() != n:
        raise UserError(f"groups has {groups.numel()} entries; allowed: one graph index per "
                        f"node ({n})")
    out = []
    local = torch.empty(n, dtype=torch.long, device=groups.device)
    for g in torch.unique(groups[groups >= 0]):
        nodes = (groups == g).nonzero().view(-1)
        local[nodes] = torch.arange(nodes.numel(), device=groups.device)
        inside = (groups[edge_index[0]] == g) & (groups[edge_index[1]] == g)
        out.append((nodes, as_graph(local[edge_index[:, inside]], nodes.numel(),
                                    edge_index.device)))
    return out


def _mean_over(rows: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Per metric, the mean of the finite values over ``rows`` (nan if none)."""
    values: dict[str, list[float]] = {}
    for r in rows:
        for k, v in r.items():
            values.setdefault(k, [])
            if isinstance(v, (int, float)) and math.isfinite(v):
                values[k].append(float(v))
    return {k: (sum(v) / len(v) if v else float("nan")) for k, v in values.items()}


def format_table(rows: Sequence[Mapping]) -> str:
    """Fixed-width text table of :func:`trace` rows (floats to 4 significant
    digits; the ``name`` column left-aligned, the others right-aligned)."""
    if not rows:
        return ""
    cols: list[str] = []
    for r in rows:
        cols.extend(k for k in r if k not in cols)

    def fmt(v) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.4g}"
        return str(v)

    cells = [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(cols)]

    def line(items) -> str:
        return "  ".join(s.ljust(w) if c == "name" else s.rjust(w)
                         for s, w, c in zip(items, widths, cols)).rstrip()

    return "\n".join([line(cols), line("-" * w for w in widths), *map(line, cells)])
