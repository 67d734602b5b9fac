"""Errors raised for bad user input.

Every error a user can cause by a bad argument is a :class:`UserError`: the CLI
prints its message as one line on stderr and exits with status 2, with no
traceback. Messages name the bad value and what is allowed.
"""

from __future__ import annotations

#: Exit status of a command whose runs all finished, some of them diverged (a
#: non-finite loss or output; their records say where). Bad input exits with 2.
EXIT_DIVERGED = 3


class UserError(ValueError):
    """Bad input from the user (an argument, a file, a dataset name, ...)."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def check_choice(what: str, value, allowed) -> None:
    """Raise :class:`UserError` unless ``value`` is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        raise UserError(f"unknown {what} {value!r}; allowed: {', '.join(map(str, allowed))}")


def check_arg(function: str, name: str, value, kinds, allowed: str) -> None:
    """``TypeError`` naming the argument of a public function that has the wrong
    type (e.g. swapped arguments), unless ``value`` is an instance of ``kinds``."""
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in (
            kinds if isinstance(kinds, tuple) else (kinds,))):
        kind = type(value).__name__
        shown = f"{kind} {value!r}" if len(repr(value)) <= 40 else f"a {kind}"
        raise TypeError(f"{function}(): argument {name!r} is {shown}; allowed: {allowed}")
