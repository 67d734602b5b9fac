"""Where a sweep's cells run: this process, local worker processes, Ray or Slurm.

Every executor runs :func:`gnnmask.experiments.sweep.run_cell` once per cell,
and ``run_cell`` writes the cell's record atomically itself, wherever it
runs; so resuming, refusing mixed configurations and ``gnnmask report`` do
not depend on the executor. An executor yields ``(key, result)`` pairs as
cells finish, ``result`` being the record or the exception the cell raised.

``local``  one cell after another in this process (``jobs=1``), or a pool of
           ``jobs`` worker processes (one thread each, forkserver start).
``ray``    one Ray task per cell on an existing cluster (``address``, e.g.
           ``ray://head:10001`` or ``auto``) or a local instance started here;
           ``cpus_per_cell`` / ``gpus_per_cell`` are the tasks' resources
           (fractional GPUs share a card). Needs ``pip install gnnmask[ray]``.
``slurm``  one Slurm job array through submitit (``partition``,
           ``time_min``, ``gpus_per_cell``, ``cpus_per_cell``; logs in
           ``folder``). ``local=True`` runs the array on this machine with
           submitit's local executor (tests, or a workstation without Slurm).
           Needs ``pip install gnnmask[slurm]``.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from gnnmask.errors import UserError
from gnnmask.registry import Registry
from gnnmask.train.runtime import configure_process

EXECUTORS = Registry("executor", {
    "local": "Cells in worker processes on this machine (--jobs).",
    "ray": "Cells as Ray tasks on a cluster (--ray-address).",
    "slurm": "Cells as Slurm jobs through submitit (--slurm-partition).",
})
Call = tuple[Hashable, tuple]


def init_worker(threads: int) -> None:
    """Set-up of a process that runs cells: the command line's process
    settings (:func:`gnnmask.train.runtime.configure_process`) and its share
    of the CPU threads."""
    import torch

    configure_process()  # before the thread pool starts: see gnnmask.train.runtime
    torch.set_num_threads(threads)


def _run_in_worker(fn: Callable, threads: int, args: tuple):
    init_worker(threads)
    return fn(*args)


@dataclass
class LocalExecutor:
    """Cells in this process (``jobs=1``) or in ``jobs`` worker processes."""

    jobs: int = 1

    def run(self, fn: Callable, calls: Sequence[Call]) -> Iterator[tuple[Hashable, object]]:
        if self.jobs == 1:
            for key, args in calls:
                try:
                    yield key, fn(*args)
                except Exception as e:  # noqa: BLE001 - the sweep reports it
                    yield key, e
            return
        if not calls:
            return
        if "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["gnnmask.experiments.sweep"])  # import torch once
        else:
            ctx = multiprocessing.get_context("spawn")
        jobs = min(self.jobs, len(calls))
        threads = max(1, (os.cpu_count() or 1) // jobs)
        pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=init_worker,
                                   initargs=(threads,))
        try:
            futures = {pool.submit(fn, *args): key for key, args in calls}
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                try:
                    yield futures[future], future.result()
                except Exception as e:  # noqa: BLE001
                    yield futures[future], e
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class RayExecutor:
    """One Ray task per cell."""

    address: str | None = None
    cpus_per_cell: float = 1.0
    gpus_per_cell: float = 0.0

    def run(self, fn: Callable, calls: Sequence[Call]) -> Iterator[tuple[Hashable, object]]:
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray; allowed: pip install 'gnnmask[ray]'") \
                from None
        if not calls:
            return
        if not ray.is_initialized():
            ray.init(address=self.address, ignore_reinit_error=True, log_to_driver=False,
                     include_dashboard=False)
        task = ray.remote(_run_in_worker).options(num_cpus=self.cpus_per_cell,
                                                  num_gpus=self.gpus_per_cell, max_retries=0)
        threads = max(1, int(self.cpus_per_cell))
        pending = {task.remote(fn, threads, args): key for key, args in calls}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    key = pending.pop(ref)
                    try:
                        yield key, ray.get(ref)
                    except ray.exceptions.RayTaskError as e:
                        yield key, e.as_instanceof_cause()
                    except Exception as e:  # noqa: BLE001 - a lost worker, say
                        yield key, e
        finally:  # the sweep stopped early: the cells not yet finished are cancelled
            for ref in pending:
                ray.cancel(ref, force=True)


@dataclass
class SlurmExecutor:
    """One Slurm job array (submitit); ``local`` runs it on this machine."""

    folder: Path
    partition: str | None = None
    time_min: int = 60
    cpus_per_cell: int = 1
    gpus_per_cell: int = 0
    local: bool = False
    poll_s: float = 1.0

    def run(self, fn: Callable, calls: Sequence[Call]) -> Iterator[tuple[Hashable, object]]:
        try:
            import submitit
        except ImportError:
            raise UserError("--executor slurm needs submitit; allowed: pip install "
                            "'gnnmask[slurm]'") from None
        if not calls:
            return
        if self.local:
            executor = submitit.LocalExecutor(folder=str(self.folder))
            executor.update_parameters(timeout_min=self.time_min)
        else:
            executor = submitit.AutoExecutor(folder=str(self.folder), cluster="slurm")
            executor.update_parameters(
                timeout_min=self.time_min, cpus_per_task=self.cpus_per_cell,
                gpus_per_node=self.gpus_per_cell,
                **({"slurm_partition": self.partition} if self.partition else {}))
        keys = [key for key, _ in calls]
        jobs = executor.map_array(_run_in_worker, [fn] * len(calls),
                                  [self.cpus_per_cell] * len(calls), [a for _, a in calls])
        pending = dict(zip(jobs, keys))
        try:
            while pending:
                finished = [job for job in pending if job.done()]
                if not finished:
                    time.sleep(self.poll_s)
                    continue
                for job in finished:
                    key = pending.pop(job)
                    try:
                        yield key, job.result()
                    except Exception as e:  # noqa: BLE001 - submitit's FailedJobError, say
                        yield key, e
        finally:  # the sweep stopped early: the jobs not yet finished are cancelled
            for job in pending:
                job.cancel(check=False)


def make_executor(name: str, *, jobs: int = 1, out: Path | None = None,
                  ray_address: str | None = None, cpus_per_cell: float = 1.0,
                  gpus_per_cell: float = 0.0, slurm_partition: str | None = None,
                  slurm_time: int = 60, slurm_local: bool = False):
    """The executor ``name`` (one of :data:`EXECUTORS`) with its options."""
    if name not in EXECUTORS:
        raise UserError(f"unknown --executor {name!r}; allowed: {', '.join(EXECUTORS)}")
    if cpus_per_cell <= 0 or gpus_per_cell < 0:
        raise UserError("--cpus-per-cell must be > 0 and --gpus-per-cell >= 0")
    if name == "local":
        if not isinstance(jobs, int) or jobs < 1:
            raise UserError(f"--jobs {jobs!r} is invalid; allowed: a positive integer")
        return LocalExecutor(jobs)
    if name == "ray":
        return RayExecutor(ray_address, cpus_per_cell, gpus_per_cell)
    if slurm_time < 1:
        raise UserError(f"--slurm-time {slurm_time!r} is invalid; allowed: minutes >= 1")
    return SlurmExecutor(Path(out or ".") / ".submitit", slurm_partition, int(slurm_time),
                         max(1, int(cpus_per_cell)), int(gpus_per_cell), slurm_local)
