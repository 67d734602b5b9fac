"""Sparsity schedules."""

from __future__ import annotations

import pytest

from gnnmask.errors import UserError
from gnnmask.masks import make_schedule


def test_schedules_follow_their_formulas():
    lin = make_schedule("linear", 0.8, end=0.5)
    assert [lin(e, 100) for e in (0, 25, 50, 99)] == pytest.approx([0.0, 0.4, 0.8, 0.8])
    assert not lin.done(49, 100) and lin.done(50, 100)
    cub = make_schedule("cubic", 0.8, end=0.5)
    assert [cub(e, 100) for e in (0, 25, 50, 80)] == pytest.approx(
        [0.0, 0.8 * (1 - 0.5**3), 0.8, 0.8]
    )
    const = make_schedule("constant", 0.3)
    assert const(0, 10) == const(9, 10) == 0.3 and const.done(0, 10)
    assert repr(lin) == "LinearSchedule(target=0.8, end=0.5)"


@pytest.mark.parametrize("bad", [1.0, -0.1, "x", None, float("nan")])
def test_bad_targets(bad):
    with pytest.raises(UserError, match="sparsity .* is out of range; allowed: 0 <= sparsity < 1"):
        make_schedule("linear", bad)


def test_bad_names_and_ends():
    with pytest.raises(UserError, match="unknown schedule 'step'; allowed: constant, linear"):
        make_schedule("step", 0.5)
    with pytest.raises(UserError, match="schedule end 0.0 is out of range"):
        make_schedule("linear", 0.5, end=0.0)
