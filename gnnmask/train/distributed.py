"""One run over several processes (``torchrun ... -m gnnmask train ... --distributed``).

Every rank builds the same model from the same seed, trains it under
:class:`~torch.nn.parallel.DistributedDataParallel` on its share of the
training nodes (every ``world``-th one), and so applies the same averaged
gradients: scores, weights and, recomputed from them on every rank, the
masks stay identical without being sent (``--check-masks`` compares their
checksums every epoch). Every rank evaluates the whole graph, so all take the
same model-selection decisions; only rank 0 writes records. The process group
is gloo on the CPU and NCCL on CUDA, from the environment torchrun sets.
"""

from __future__ import annotations

import inspect
import os

import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gnnmask.errors import UserError
from gnnmask.masks import get_mask_group, is_masked
from gnnmask.train.device import resolve_device

__all__ = ["DistributedDataParallel", "ddp", "is_main_process", "mask_checksums",
           "rank_and_world"]


def check_environment(config) -> None:
    """:class:`UserError` when ``config.distributed`` is set outside the
    environment ``torchrun`` sets up (checked before anything is written)."""
    if config.distributed and not dist.is_initialized() and (
            "RANK" not in os.environ or "WORLD_SIZE" not in os.environ):
        raise UserError("--distributed needs the environment torchrun sets up; allowed: "
                        "torchrun --nproc-per-node N -m gnnmask train ... --distributed")


def rank_and_world(config) -> tuple[int, int]:
    """``(rank, world size)`` of this process: ``(0, 1)`` unless
    ``config.distributed``, which joins the process group ``torchrun`` set up
    (gloo on CPU, NCCL on CUDA)."""
    if not config.distributed:
        return 0, 1
    if not dist.is_initialized():
        check_environment(config)
        backend = "nccl" if resolve_device(config.device).type == "cuda" else "gloo"
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def ddp(model: nn.Module) -> DistributedDataParallel:
    """``model`` under DDP without buffer syncs in the forward pass."""
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters:
        return DistributedDataParallel(model, forward_sync_buffers=False)
    return DistributedDataParallel(model, broadcast_buffers=False)


def is_main_process() -> bool:
    """Whether this process writes records: rank 0, or the only process."""
    return not dist.is_initialized() or dist.get_rank() == 0


def mask_checksums(model: nn.Module) -> list[int] | None:
    """Every rank's checksum of the masks (a hash of the kept positions),
    gathered; a mismatch is an error. ``None`` for a model without masks."""
    if not is_masked(model):
        return None
    total = 0
    for i, mask in enumerate(get_mask_group(model).masks().values()):
        kept = mask.reshape(-1).nonzero().view(-1)
        total = (total * 1_000_003 + i + int((kept * (kept % 7919 + 1)).sum())) % (1 << 61)
    if not dist.is_initialized():
        return [total]
    gathered: list[int | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, total)
    if len(set(gathered)) > 1:
        raise RuntimeError(f"masks differ between ranks (checksums {gathered})")
    return gathered
