"""Process-level settings for CPU training: opt-ins, never applied by the library.

The ``gnnmask`` command line and its sweep workers call
:func:`configure_process` first thing; the library itself (``import gnnmask``,
:func:`gnnmask.train.train`, the mask API) changes no process-wide setting.
Library users who want the same behaviour call it right after importing
torch, before the first parallel tensor operation.

Denormals. Mask-only training multiplies small gradients by small weights:
deep in a 32-layer GCN the score gradients, and Adam's squared-gradient
averages built from them, fall below float32's smallest normal number
(1.2e-38). x86 CPUs handle such denormal numbers in microcode, tens of times
slower than normal ones, which slows the optimiser's passes over the scores
(figures in docs/RESULTS.md). :func:`flush_denormals` turns on flush-to-zero
(``torch.set_flush_denormal``), as TensorFlow does by default: values below
1.2e-38 count as 0.

The flag lives in each thread's floating-point control register, and a new
thread copies it from the thread that creates it. ``torch.set_flush_denormal``
sets it for the calling thread only, so it reaches the OpenMP worker threads
only if it is set *before* their pool starts (the first parallel tensor
operation of the process). Set later, half of every parallel pass over the
scores still produced denormals on two threads.

Allocator.

Full-batch training allocates and frees the same large tensors every step
(activations, masked weights, gradients). glibc's ``malloc`` hands freed
memory at the top of the heap back to the kernel once more than
``M_TRIM_THRESHOLD`` bytes are free there (by default twice the largest block
seen so far, a few MB here), so each step page-faults the same memory back
in (a few percent of a deep GCN's step on CPU). PyTorch's CPU tuning
guide suggests swapping the allocator (jemalloc, tcmalloc); a ``mallopt``
call that keeps freed memory in the process does the same for glibc without
an extra dependency. The price: the process keeps its peak heap size.

glibc also gives each thread that allocates its own arena (a separate heap),
and those heaps are shrunk and regrown independently of the trim threshold
above: with two OpenMP threads, a deep mask-only step still page-faulted
5,000-17,000 pages (20-70 MB) every few steps. One arena for the whole
process (``M_ARENA_MAX = 1``, as ``MALLOC_ARENA_MAX=1`` does) removes those
faults; the threads' allocations are few and large, so they hardly contend.
It takes effect for threads that have not allocated yet, so call
:func:`tune_cpu_allocator` before the first parallel tensor operation.

``GNNMASK_MALLOC_TUNING=0`` turns it off.

Warnings. torch announces its CSR support as beta on first use; the command
line hides that notice (library users see Python's default once).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import warnings

import torch

#: glibc ``mallopt`` parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
#: Keep up to this much free memory at the top of the heap.
TRIM_THRESHOLD = 1 << 30
#: Serve blocks below this size (glibc's maximum, 32 MiB) from the heap.
MMAP_THRESHOLD = 32 << 20

_tuned: bool | None = None


def flush_denormals() -> bool:
    """Flush denormal floats to zero on the CPU, for this thread and the
    threads it creates later (returns whether the CPU supports it)."""
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
    _tuned = (
        bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
        and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
        and bool(mallopt(M_ARENA_MAX, 1))
    )
    return _tuned


def configure_process() -> None:
    """What the command line and its sweep workers set before any tensor
    work: flush-to-zero, the allocator tuning and quiet CSR beta notices."""
    flush_denormals()
    tune_cpu_allocator()
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
