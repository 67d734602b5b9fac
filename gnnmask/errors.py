"""Errors raised for bad user input.

Every error a user can cause by a bad argument is a :class:`UserError`: the CLI
prints its message as one line on stderr and exits with status 2, with no
traceback. Messages name the bad value and what is allowed.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user (an argument, a file, a dataset name, ...)."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def check_choice(what: str, value, allowed) -> None:
    """Raise :class:`UserError` unless ``value`` is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        raise UserError(f"unknown {what} {value!r}; allowed: {', '.join(map(str, allowed))}")
