"""Training methods as small strategy objects behind one interface (:class:`Method`)."""

from gnnmask.errors import UserError
from gnnmask.methods import dense, dynamic, lottery, masked, sparse  # noqa: F401,I001
from gnnmask.methods.base import METHODS, Method, Phase, register_method


def get_method_class(name: str) -> type[Method]:
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; allowed: {', '.join(sorted(METHODS))}")
    return METHODS[name]


__all__ = ["METHODS", "Method", "Phase", "get_method_class", "register_method"]
