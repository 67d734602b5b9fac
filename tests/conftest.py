"""Shared fixtures: the data root of the shared benchmark files, small graphs."""

import gzip
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path | None:
    """``GNNMASK_DATA`` if set, else ``../shared/datasets`` beside the repo."""
    env = os.environ.get("GNNMASK_DATA")
    root = Path(env) if env else REPO.parent / "shared" / "datasets"
    return root if (root / "planetoid" / "Cora" / "raw").is_dir() else None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data_root()
    if root is None:
        pytest.skip("shared datasets not found: set GNNMASK_DATA to the shared datasets folder")
    return root


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Processed datasets go to a per-session cache, never a user's own."""
    if "GNNMASK_CACHE" not in os.environ:
        os.environ["GNNMASK_CACHE"] = str(tmp_path_factory.mktemp("gnnmask-cache"))
    yield


@pytest.fixture(autouse=True)
def _registries_restored():
    """A method, rule or model a test registers is gone after it: no test
    depends on another's registrations."""
    from gnnmask.masks import RULES
    from gnnmask.methods import METHODS
    from gnnmask.models import MODELS

    saved = [(r, dict(r)) for r in (METHODS, RULES, MODELS)]
    yield
    for registry, entries in saved:
        registry.clear()
        registry.update(entries)


#: Every device this machine has: the CPU always, CUDA where present (marked
#: ``cuda``, so ``pytest -m cuda`` runs the GPU half alone).
DEVICES = ["cpu", pytest.param("cuda", marks=[
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")])]


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Each test that takes it runs on the CPU and, where present, on CUDA."""
    return torch.device(request.param)


@pytest.fixture
def write_csv_gz():
    """``write(path, rows)``: a gzipped CSV file of ``rows`` (the raw layout
    OGB's dataset classes read), its folders created."""
    def write(path: Path, rows) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt") as f:
            f.writelines(",".join(map(str, r)) + "\n" for r in rows)

    return write


@pytest.fixture
def cli(capsys):
    """``cli(*argv)`` runs ``gnnmask ARGV`` in this process and returns
    ``(exit code, stdout, stderr)``; arguments are passed through ``str``."""
    from gnnmask.cli import main

    def run(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run
