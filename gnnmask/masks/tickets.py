"""Tickets: a masked network stored as seed + recipe + one bit per weight.

Frozen weights are a pure function of the seed and the init recipe
(:mod:`gnnmask.masks.init`), so a ticket stores only

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

from gnnmask.errors import UserError
from gnnmask.masks.api import get_mask_group, mask_model

MAGIC = b"GNNMTKT\0"
FORMAT_VERSION = 1
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
    build_seed: int | None = None,
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
    """
    group = get_mask_group(model)
    builder = _builder_path(builder)
    if builder is None and isinstance(getattr(model, "config", None), dict):
        if type(model).__module__.startswith("gnnmask.models"):
            builder, builder_kwargs = GNNMASK_BUILDER, model.config
    kwargs = dict(builder_kwargs or {})
    recipe = group.recipe
    parts, tensors, buffers = [], [], []
    for name, keep in group.masks().items():
        bits = np.packbits(keep.detach().cpu().numpy().reshape(-1)).tobytes()
        tensors.append([name, list(keep.shape), len(bits)])
        parts.append(bits)
    params = {n for n, _ in model.named_parameters()}
    for name, t in model.state_dict().items():
        if name not in params and isinstance(t, torch.Tensor):
            raw = _raw(t)
            buffers.append([name, str(t.dtype).removeprefix("torch."), list(t.shape), len(raw)])
            parts.append(raw)
    header = dict(
        builder=builder, kwargs=kwargs,
        build_seed=int(recipe["seed"] if build_seed is None else build_seed),
        recipe=recipe, sparsity=group.sparsity, tensors=tensors, buffers=buffers,
        fingerprint=fingerprint(model), torch=torch.__version__,
    )
    try:
        head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    except TypeError as e:
        raise UserError(
            f"builder kwargs are not JSON-serialisable ({e}); allowed: JSON values"
        ) from None
    body = _HEAD.pack(MAGIC, FORMAT_VERSION, len(head)) + head + b"".join(parts)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(body + hashlib.sha256(body).digest())
    os.replace(tmp, path)
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
    if version != FORMAT_VERSION:
        raise UserError(
            f"ticket {str(path)!r} has format version {version}; allowed: {FORMAT_VERSION}"
        )
    if hashlib.sha256(data[:-_DIGEST]).digest() != data[-_DIGEST:]:
        raise UserError(f"ticket {str(path)!r} is corrupt or truncated (checksum mismatch)")
    try:
        header = json.loads(data[_HEAD.size : _HEAD.size + n_head])
        sizes = [t[2] for t in header["tensors"]] + [b[3] for b in header["buffers"]]
    except (ValueError, KeyError, IndexError, TypeError):
        raise UserError(f"ticket {str(path)!r} has an unreadable header") from None
    payload = memoryview(data)[_HEAD.size + n_head : -_DIGEST]
    if sum(sizes) != len(payload):
        raise UserError(f"ticket {str(path)!r} is corrupt (payload size mismatch)")
    return header, payload


def _build(header: dict, path) -> nn.Module:
    if not header["builder"]:
        raise UserError(
            f"ticket {str(path)!r} names no builder; allowed: pass the unmasked model, "
            "load_ticket(path, model=...)"
        )
    module, _, fn = header["builder"].partition(":")
    try:
        func = importlib.import_module(module)
        for part in fn.split("."):
            func = getattr(func, part)
    except (ImportError, AttributeError):
        raise UserError(f"ticket builder {header['builder']!r} cannot be imported") from None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(header["build_seed"])
        return func(**header["kwargs"])


def load_ticket(path, device=None, model: nn.Module | None = None) -> nn.Module:
    """Rebuild the ticket's network bit for bit, masks fixed to the stored bits.

    Args:
        device: where to put the model (default: CPU).
        model: an unmasked model to apply the ticket to instead of calling the
            stored builder; build it under ``torch.manual_seed(build_seed)``.

    Returns the masked model in eval mode with its mask group in the fixed
    state (scores are re-drawn from the seed, unused and untrained).
    """
    header, payload = read_ticket(path)
    model = _build(header, path) if model is None else model
    shapes = {name: shape for name, shape, _ in header["tensors"]}
    for name, p in model.named_parameters():
        if is_lazy(p) and name in shapes:
            p.materialize(tuple(shapes[name]))
    recipe = dict(header["recipe"])
    model = mask_model(model, **recipe)
    group = get_mask_group(model)
    if list(group.members) != list(shapes):
        raise UserError(
            f"ticket {str(path)!r} does not fit the model: it masks {list(shapes)[:4]}..., "
            f"the model {list(group.members)[:4]}..."
        )
    masks, offset = {}, 0
    for name, shape, size in header["tensors"]:
        model_shape = list(group.members[name].scores.shape)
        if model_shape != shape:
            raise UserError(
                f"ticket {str(path)!r} does not fit the model: {name!r} has shape {shape} "
                f"in the ticket, {model_shape} in the model"
            )
        bits = np.frombuffer(payload[offset : offset + size], dtype=np.uint8)
        n = int(np.prod(shape))
        masks[name] = torch.from_numpy(np.unpackbits(bits, count=n).astype(bool)).view(shape)
        offset += size
    group.sparsity = header["sparsity"]
    group.fix(masks)
    model_buffers = dict(model.named_buffers())
    with torch.no_grad():
        for name, dtype, shape, size in header["buffers"]:
            if name not in model_buffers or list(model_buffers[name].shape) != shape:
                raise UserError(f"ticket {str(path)!r} does not fit the model: buffer {name!r}")
            raw = torch.frombuffer(bytearray(payload[offset : offset + size]), dtype=torch.uint8)
            model_buffers[name].copy_(raw.view(getattr(torch, dtype)).view(shape))
            offset += size
    if fingerprint(model) != header["fingerprint"]:
        raise UserError(
            f"ticket {str(path)!r} does not reproduce the frozen weights (fingerprint "
            f"mismatch); allowed: the same model, built under torch.manual_seed"
            f"({header['build_seed']})"
        )
    if device is not None:
        model = model.to(device)
    return model.eval()
