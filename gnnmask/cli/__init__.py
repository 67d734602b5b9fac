"""Command-line interface (``gnnmask ...`` and ``python -m gnnmask ...``)."""

from gnnmask.cli.main import main

__all__ = ["main"]
