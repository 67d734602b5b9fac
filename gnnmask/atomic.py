"""Atomic file writes: a reader sees the old file or the new one, never a part.

Every file gnnmask writes (records, reports, plots, tickets) goes through
:func:`write_atomic`: the content goes to a temporary file beside the target,
named ``.<name>.<random>.tmp`` (the pattern that cleanup after a killed
process looks for, :data:`TEMPORARY`), is flushed to disk (``fsync``) and then
renamed over the target (``os.replace``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["TEMPORARY", "temporary_files", "write_atomic"]

#: Glob of the temporary files :func:`write_atomic` leaves if killed midway.
TEMPORARY = ".*.tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, content: bytes | Callable[[Path], None]) -> Path:
    """Write ``content`` (bytes, or a function that writes the file at the
    path it is given) to ``path`` atomically; return ``path``. The file gets
    the usual permissions (``0666`` less the umask), not ``mkstemp``'s ``0600``."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            content(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def temporary_files(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """The temporary files a killed :func:`write_atomic` left in ``folder``."""
    folder = Path(folder)
    found = folder.rglob(TEMPORARY) if recursive else folder.glob(TEMPORARY)
    return sorted(p for p in found if p.is_file())
