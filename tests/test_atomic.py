"""The one atomic writer every file goes through."""

from __future__ import annotations

import os

import pytest

from gnnmask.atomic import temporary_files, write_atomic


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "r.json"
    assert write_atomic(path, b"old") == path and path.read_bytes() == b"old"

    def half_then_fail(p):
        p.write_bytes(b"ne")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_atomic(path, half_then_fail)
    assert path.read_bytes() == b"old" and temporary_files(tmp_path) == []
    write_atomic(path, lambda p: p.write_text("new"))
    assert path.read_text() == "new"
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600


def test_leftovers_of_a_killed_write_are_found(tmp_path):
    (tmp_path / "a").mkdir()
    stale = tmp_path / "a" / ".seed_0.json.x1y2.tmp"
    stale.write_text("{")
    assert temporary_files(tmp_path) == []
    assert temporary_files(tmp_path, recursive=True) == [stale]
