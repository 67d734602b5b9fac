"""Training methods as small strategy objects behind one interface (:class:`Method`).

Each module of this package defines methods; a class decorated with
:func:`register_method` is in :data:`METHODS` once its module is imported
(this package imports all of them).
"""

import importlib
import pkgutil

from gnnmask.methods.base import METHODS, Context, Method, Phase, register_method
from gnnmask.registry import resolve

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def get_method_class(name) -> type[Method]:
    """The method class registered as ``name`` (a class is returned as is)."""
    return resolve(METHODS, name)


__all__ = ["METHODS", "Context", "Method", "Phase", "get_method_class", "register_method"]
