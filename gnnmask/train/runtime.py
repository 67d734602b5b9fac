"""Process-level performance settings for CPU training.

Denormals. Mask-only training multiplies small gradients by small weights:
deep in a 32-layer GCN the score gradients, and Adam's squared-gradient
averages built from them, fall below float32's smallest normal number
(1.2e-38). x86 CPUs handle such denormal numbers in microcode, tens of times
slower than normal ones, and Adam's elementwise passes over the scores then
cost ~20 ms more per step than over the weights of the same dense model. The
training engine therefore turns on flush-to-zero on the CPU
(:func:`flush_denormals`, ``torch.set_flush_denormal``), as TensorFlow does by
default: values below 1.2e-38 count as 0. The setting is process-wide.

Allocator.

Full-batch training allocates and frees the same large tensors every step
(activations, masked weights, gradients). glibc's ``malloc`` hands freed
memory at the top of the heap back to the kernel once more than
``M_TRIM_THRESHOLD`` bytes are free there (by default twice the largest block
seen so far, a few MB here), so each step page-faults the same memory back
in: a few percent of a 32-layer, 448-wide GCN training step on Cora on two
cores (``scripts/bench_mask_overhead.py``). PyTorch's CPU tuning
guide suggests swapping the allocator (jemalloc, tcmalloc); a ``mallopt``
call that keeps freed memory in the process does the same for glibc without
an extra dependency. The price: the process keeps its peak heap size.

The ``gnnmask`` command line calls :func:`tune_cpu_allocator` once at start;
library users may call it themselves. ``GNNMASK_MALLOC_TUNING=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

import torch

#: glibc ``mallopt`` parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Keep up to this much free memory at the top of the heap.
TRIM_THRESHOLD = 1 << 30
#: Serve blocks below this size (glibc's maximum, 32 MiB) from the heap.
MMAP_THRESHOLD = 32 << 20

_tuned: bool | None = None


def flush_denormals() -> bool:
    """Flush denormal floats to zero on the CPU (process-wide; returns whether
    the CPU supports it). Called by :func:`gnnmask.train.train` for CPU runs."""
    return bool(torch.set_flush_denormal(True))


def tune_cpu_allocator() -> bool:
    """Make glibc keep freed memory for reuse (idempotent). Returns whether the
    setting is active: ``False`` off Linux/glibc or with
    ``GNNMASK_MALLOC_TUNING=0``."""
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    if not sys.platform.startswith("linux") or os.environ.get("GNNMASK_MALLOC_TUNING") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _tuned = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _tuned
