"""Training methods as small strategy objects behind one interface (:class:`Method`)."""

from gnnmask.errors import UserError
from gnnmask.methods.base import METHODS, Method, register_method
from gnnmask.methods import dense  # noqa: F401  (registers "dense")

try:  # mask-only methods (ugt, edge-popup)
    from gnnmask.methods import masked  # noqa: F401
except ImportError:  # pragma: no cover - during development only
    pass


def get_method_class(name: str) -> type[Method]:
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; allowed: {', '.join(sorted(METHODS))}")
    return METHODS[name]


__all__ = ["METHODS", "Method", "get_method_class", "register_method"]
