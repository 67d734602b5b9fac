"""Run records: atomic JSON files with the config, versions and metrics of a run."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from gnnmask import __version__
from gnnmask.atomic import write_atomic


def versions() -> dict[str, str]:
    """Versions of Python and of the packages that determine a run's numbers."""
    import numpy
    import torch
    import torch_geometric

    return {
        "gnnmask": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as JSON so that readers see either the old file or the new
    one, never a partial one (:func:`gnnmask.atomic.write_atomic`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(obj, indent=1, default=_jsonable) + "\n"
    return write_atomic(path, text.encode())


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as f:
        return json.load(f)


def _jsonable(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
