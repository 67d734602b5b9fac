"""Tickets: a masked network stored as seed + recipe + one bit per weight.

Frozen weights are a pure function of the seed and the init recipe
(:mod:`gnnmask.masks.init`), so a ticket of a score-masked model
(:func:`~gnnmask.masks.mask_model`) stores only

* how to rebuild the unmasked model: an importable ``"module:function"``
  builder and its JSON keyword arguments (gnnmask models:
  ``"gnnmask.models:build_model"`` with ``model.config``), called under
  ``torch.manual_seed(build_seed)`` so the non-masked frozen parameters (e.g.
  biases, norms) come out identical too;
* the mask recipe (rule, sparsity, inits, scale, include/exclude, seed) and
  the sparsity in force when saved (it sets ``scale="keep"``'s factor);
* per masked tensor its name, shape and mask bits (``numpy.packbits``);
* the model's persistent buffers (e.g. batch-norm statistics), raw;
* a SHA-256 fingerprint of all frozen parameters, checked after rebuilding,
  so a ticket either reproduces the network bit for bit or fails loudly.

A model with trained weights under fixed masks (:func:`~gnnmask.masks.sparsify`)
cannot be rebuilt from a seed: its ticket also stores every parameter, raw
(format version 2 adds this ``params`` list; version 1 files still load).
A graph ticket (edges pruned, e.g. UGS) also stores the graph it runs on: its
kept edges (int32) and their weights (format version 3 adds this ``graph``
list; :func:`ticket_graph` reads it back). Format version 4 changes no layout:
from it on a gnnmask SGC's ``dropout`` is one it reads (before, SGC read none
and stored the common default, 0.5, unused), so an older SGC ticket loads
with dropout 0, the network it was.

File layout (little-endian)::

    b"GNNMTKT\\0" | u16 format version | u32 header length | JSON header |
    payload (bits, then buffers) | SHA-256 of everything before it (32 bytes)

A 32-layer, 448-wide GCN ticket is ~1/32 of its float32 ``state_dict``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import struct
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parameter import is_lazy

from gnnmask.atomic import write_atomic
from gnnmask.errors import UserError, check_arg
from gnnmask.masks.api import get_mask_group, mask_model
from gnnmask.masks.core import MaskParametrization
from gnnmask.masks.sparse import sparsify

MAGIC = b"GNNMTKT\0"
FORMAT_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
_HEAD = struct.Struct("<8sHI")
_DIGEST = 32
GNNMASK_BUILDER = "gnnmask.models:build_model"


def _builder_path(builder) -> str | None:
    if builder is None or isinstance(builder, str):
        if isinstance(builder, str) and ":" not in builder:
            raise UserError(f"builder {builder!r} is invalid; allowed: 'module:function'")
        return builder
    path = f"{builder.__module__}:{builder.__qualname__}"
    if "<" in path:
        raise UserError(f"builder {path!r} is not importable; allowed: a module-level function")
    return path


def _raw(t: torch.Tensor) -> bytes:
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def fingerprint(model: nn.Module) -> str:
    """SHA-256 over every frozen (non-score) parameter, in ``named_parameters`` order."""
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        if not name.endswith(".scores"):
            h.update(name.encode())
            h.update(_raw(p))
    return h.hexdigest()


def save_ticket(
    path, model: nn.Module, builder=None, builder_kwargs: dict | None = None,
    build_seed: int | None = None, dataset: str | None = None,
    graph: tuple | None = None, task: str | None = None,
) -> Path:
    """Write the ticket of masked ``model`` to ``path`` (atomically); return the path.

    Args:
        builder: ``"module:function"`` (or a module-level function) that builds
            the unmasked model from ``builder_kwargs``. Default: gnnmask models
            (which carry ``model.config``) use ``gnnmask.models:build_model``;
            for other models without a builder, :func:`load_ticket` needs the
            model passed in.
        build_seed: the ``torch.manual_seed`` the model was built under
            (default: the mask seed, as the gnnmask engine does).
        dataset: the name of the graph the ticket was trained on, kept in
            the header (``gnnmask evaluate`` refuses another dataset by it).
        graph: ``(edge_index, edge_weight or None)``, the edges a graph
            ticket runs on (its kept edges), stored with it.
        task: what the model was trained to predict (e.g. ``"link"``), kept
            in the header; absent means node classification.

    The builder is imported before anything is written; a path that cannot
    be written (missing folder, read-only, a folder) is a :class:`UserError`.
    """
    check_arg("save_ticket", "path", path, (str, os.PathLike),
              "a file path (str or os.PathLike), then the model: save_ticket(path, model)")
    group = get_mask_group(model)
    builder = _builder_path(builder)
    if builder is None and isinstance(getattr(model, "config", None), dict):
        if type(model).__module__.startswith("gnnmask.models"):
            builder, builder_kwargs = GNNMASK_BUILDER, model.config
    if builder is not None:
        _import_builder(builder)  # refuse before writing a ticket nobody can load
    kwargs = dict(builder_kwargs or {})
    recipe = group.recipe
    trained = recipe.get("kind") == "sparsify"
    parts, tensors, buffers, params = [], [], [], []
    for name, keep in group.masks().items():
        bits = np.packbits(keep.detach().cpu().numpy().reshape(-1)).tobytes()
        tensors.append([name, list(keep.shape), len(bits)])
        parts.append(bits)

    def raw_entry(name, t, entries):
        raw = _raw(t)
        entries.append([name, str(t.dtype).removeprefix("torch."), list(t.shape), len(raw)])
        parts.append(raw)

    skip = {n for n, _ in model.named_parameters()} | _mask_state(model)
    for name, t in model.state_dict().items():
        if name not in skip:
            raw_entry(name, t, buffers)
    if trained:
        for name, p in model.named_parameters():
            raw_entry(name, p, params)
    edges: list = []
    if graph is not None:
        edge_index, edge_weight = graph
        raw_entry("edge_index", edge_index.to(torch.int32), edges)
        if edge_weight is not None:
            raw_entry("edge_weight", edge_weight.detach().float(), edges)
    header = dict(
        builder=builder, kwargs=kwargs,
        build_seed=int(recipe["seed"] if build_seed is None else build_seed),
        recipe=recipe, sparsity=group.sparsity, tensors=tensors, buffers=buffers,
        params=params, graph=edges, fingerprint=None if trained else fingerprint(model),
        torch=torch.__version__, **({"dataset": str(dataset)} if dataset is not None else {}),
        **({"task": str(task)} if task is not None else {}),
    )
    try:
        head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    except TypeError as e:
        raise UserError(
            f"builder kwargs are not JSON-serialisable ({e}); allowed: JSON values"
        ) from None
    body = _HEAD.pack(MAGIC, FORMAT_VERSION, len(head)) + head + b"".join(parts)
    path = Path(path)
    try:
        write_atomic(path, body + hashlib.sha256(body).digest())
    except OSError as e:
        raise UserError(f"cannot write ticket {str(path)!r}: {e.strerror}") from None
    return path


def read_ticket(path) -> tuple[dict, memoryview]:
    """Validate the file at ``path``; return ``(header, payload)``."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UserError(f"cannot read ticket {str(path)!r}: {e.strerror}") from None
    if len(data) < _HEAD.size + _DIGEST or data[:8] != MAGIC:
        raise UserError(f"{str(path)!r} is not a gnnmask ticket (bad magic or truncated)")
    _, version, n_head = _HEAD.unpack_from(data)
    if version not in READABLE_VERSIONS:
        raise UserError(f"ticket {str(path)!r} has format version {version}; allowed: "
                        f"{', '.join(map(str, READABLE_VERSIONS))}")
    if hashlib.sha256(data[:-_DIGEST]).digest() != data[-_DIGEST:]:
        raise UserError(f"ticket {str(path)!r} is corrupt or truncated (checksum mismatch)")
    try:
        header = json.loads(data[_HEAD.size : _HEAD.size + n_head])
        header["version"] = version
        header.setdefault("params", [])
        header.setdefault("graph", [])
        sizes = [t[2] for t in header["tensors"]] + [
            b[3] for b in header["buffers"] + header["params"] + header["graph"]]
    except (ValueError, KeyError, IndexError, TypeError):
        raise UserError(f"ticket {str(path)!r} has an unreadable header") from None
    payload = memoryview(data)[_HEAD.size + n_head : -_DIGEST]
    if sum(sizes) != len(payload):
        raise UserError(f"ticket {str(path)!r} is corrupt (payload size mismatch)")
    return header, payload


def _import_builder(builder: str):
    """The function a ``"module:function"`` builder names (UserError if none)."""
    module, _, fn = builder.partition(":")
    try:
        func = importlib.import_module(module)
        for part in fn.split("."):
            func = getattr(func, part)
    except (ImportError, AttributeError):
        raise UserError(f"ticket builder {builder!r} cannot be imported; allowed: an "
                        "importable 'module:function'") from None
    if not callable(func):
        raise UserError(f"ticket builder {builder!r} is not callable")
    return func


def _build(header: dict, path) -> nn.Module:
    if not header["builder"]:
        raise UserError(
            f"ticket {str(path)!r} names no builder; allowed: pass the unmasked model, "
            "load_ticket(path, model=...)"
        )
    func = _import_builder(header["builder"])
    kwargs = dict(header["kwargs"])
    if header["version"] < 4 and header["builder"] == GNNMASK_BUILDER and \
            kwargs.get("name") == "sgc":
        kwargs["dropout"] = 0.0  # the dropout it stored was never read (module docstring)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(header["build_seed"])
        return func(**kwargs)


def _mask_state(model: nn.Module) -> set[str]:
    """``state_dict`` keys of the masks' own buffers (stored as bits instead)."""
    return {f"{prefix}.{b}" for prefix, m in model.named_modules()
            if isinstance(m, MaskParametrization) for b in ("mask", "scale")}


def _attach_recipe(model: nn.Module, recipe: dict) -> nn.Module:
    recipe = dict(recipe)
    if recipe.pop("kind", "mask_model") == "sparsify":
        return sparsify(model, **recipe)
    return mask_model(model, **recipe)


def _copy_raw(path, entries, tensors: dict, payload, offset: int, what: str) -> int:
    with torch.no_grad():
        for name, dtype, shape, size in entries:
            if name not in tensors or list(tensors[name].shape) != shape:
                raise UserError(f"ticket {str(path)!r} does not fit the model: {what} {name!r}")
            raw = torch.frombuffer(bytearray(payload[offset : offset + size]), dtype=torch.uint8)
            tensors[name].copy_(raw.view(getattr(torch, dtype)).view(shape))
            offset += size
    return offset


def ticket_graph(path) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """``(edge_index, edge_weight or None)`` a graph ticket runs on (int64
    indices), or ``None`` for a ticket that runs on its dataset's whole graph."""
    header, payload = read_ticket(path)
    if not header["graph"]:
        return None
    offset = len(payload) - sum(e[3] for e in header["graph"])
    out = {}
    for name, dtype, shape, size in header["graph"]:
        raw = torch.frombuffer(bytearray(payload[offset : offset + size]), dtype=torch.uint8)
        out[name] = raw.view(getattr(torch, dtype)).view(shape).clone()
        offset += size
    return out["edge_index"].long(), out.get("edge_weight")


def load_ticket(path, device=None, model: nn.Module | None = None) -> nn.Module:
    """Rebuild the ticket's network bit for bit, masks set to the stored bits.

    Args:
        device: where to put the model (default: CPU).
        model: an unmasked model to apply the ticket to instead of calling the
            stored builder; build it under ``torch.manual_seed(build_seed)``.

    Returns the masked model in eval mode. A score-masked model comes back
    with the ``fixed`` rule (scores re-drawn from the seed, unused;
    ``get_mask_group(model).unfix()`` returns to the training rule); a
    sparse-trained one with its trained weights.
    """
    check_arg("load_ticket", "path", path, (str, os.PathLike), "a ticket file path")
    if model is not None:
        check_arg("load_ticket", "model", model, nn.Module, "an unmasked torch.nn.Module")
    header, payload = read_ticket(path)
    model = _build(header, path) if model is None else model
    shapes = {name: shape for name, shape, _ in header["tensors"]}
    for name, p in model.named_parameters():
        if is_lazy(p) and name in shapes:
            p.materialize(tuple(shapes[name]))
    model = _attach_recipe(model, header["recipe"])
    group = get_mask_group(model)
    if list(group.members) != list(shapes):
        raise UserError(
            f"ticket {str(path)!r} does not fit the model: it masks {list(shapes)[:4]}..., "
            f"the model {list(group.members)[:4]}..."
        )
    masks, offset = {}, 0
    for name, shape, size in header["tensors"]:
        model_shape = list(group.members[name].mask.shape)
        if model_shape != shape:
            raise UserError(
                f"ticket {str(path)!r} does not fit the model: {name!r} has shape {shape} "
                f"in the ticket, {model_shape} in the model"
            )
        bits = np.frombuffer(payload[offset : offset + size], dtype=np.uint8)
        n = int(np.prod(shape))
        masks[name] = torch.from_numpy(np.unpackbits(bits, count=n).astype(bool)).view(shape)
        offset += size
    group.fix(masks)
    group.refresh(header["sparsity"])
    offset = _copy_raw(path, header["buffers"], dict(model.named_buffers()), payload, offset,
                       "buffer")
    _copy_raw(path, header["params"], dict(model.named_parameters()), payload, offset,
              "parameter")
    if header["fingerprint"] is not None and fingerprint(model) != header["fingerprint"]:
        raise UserError(
            f"ticket {str(path)!r} does not reproduce the frozen weights (fingerprint "
            f"mismatch); allowed: the same model, built under torch.manual_seed"
            f"({header['build_seed']})"
        )
    if device is not None:
        model = model.to(device)
    return model.eval()
