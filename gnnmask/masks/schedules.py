"""Sparsity schedules: ``schedule(step, total_steps) -> sparsity``.

With ``t = step / (end * total_steps)`` clipped to ``[0, 1]`` (the ramp covers
the first ``end`` fraction of training) and target ``s_f``:

``constant``  ``s_f`` from the first step.
``linear``    ``s_f * t``: from 0 (dense) to the target (tickets, Huang et al.
              2022, ramp over the first half: ``end=0.5``).
``cubic``     ``s_f + (s_0 - s_f) (1 - t)^3`` with ``s_0 = 0`` (Zhu & Gupta
              2017, arXiv:1710.01878): fast early, gentle near the target.

Evaluation after a step uses that step's sparsity.
"""

from __future__ import annotations

from gnnmask.errors import UserError
from gnnmask.masks.core import check_sparsity
from gnnmask.registry import Registry, resolve

SCHEDULES: Registry = Registry("schedule")


class Schedule:
    """A sparsity schedule; call it as ``schedule(step, total_steps)``."""

    name = "constant"

    def __init__(self, target: float, end: float = 0.5, start: float = 0.0):
        self.target = check_sparsity(target)
        self.start = check_sparsity(start)
        if not isinstance(end, (int, float)) or not 0.0 < end <= 1.0:
            raise UserError(f"schedule end {end!r} is out of range; allowed: 0 < end <= 1")
        self.end = float(end)

    def progress(self, step: int, total_steps: int) -> float:
        """Ramp position ``t`` in ``[0, 1]``."""
        ramp = self.end * total_steps
        return 1.0 if ramp <= 0 else min(1.0, max(0.0, step / ramp))

    def done(self, step: int, total_steps: int) -> bool:
        """Whether the target is reached at ``step``."""
        return self.progress(step, total_steps) >= 1.0

    def __call__(self, step: int, total_steps: int) -> float:
        return self.target

    def __repr__(self) -> str:
        return f"{type(self).__name__}(target={self.target:g}, end={self.end:g})"


@SCHEDULES.register
class ConstantSchedule(Schedule):
    """The target sparsity from the first step."""

    name = "constant"

    def done(self, step: int, total_steps: int) -> bool:
        return True

    def __repr__(self) -> str:
        return f"ConstantSchedule(target={self.target:g})"


@SCHEDULES.register
class LinearSchedule(Schedule):
    """Sparsity ramps linearly from the start to the target over ``end`` of the steps."""

    name = "linear"

    def __call__(self, step: int, total_steps: int) -> float:
        t = self.progress(step, total_steps)
        return self.start + (self.target - self.start) * t


@SCHEDULES.register
class CubicSchedule(Schedule):
    """Gradual pruning's cubic ramp (Zhu & Gupta 2018) over ``end`` of the steps."""

    name = "cubic"

    def __call__(self, step: int, total_steps: int) -> float:
        t = self.progress(step, total_steps)
        return self.target + (self.start - self.target) * (1.0 - t) ** 3


def make_schedule(name: str, target: float, end: float = 0.5) -> Schedule:
    """Build schedule ``name`` (one of :data:`SCHEDULES`) towards ``target``."""
    return resolve(SCHEDULES, name, target, end)
