"""One registry mechanism for every kind of choice (methods, mask rules,
models, metrics, initialisations, schedules, optimisers, ...).

A :class:`Registry` maps names to entries: classes or functions, or, for a
plain choice whose behaviour lives in the code that reads it, the sentence
that describes it. Entries register with :meth:`Registry.register` (as a
decorator: defining the class registers it, no import list to extend) and
are looked up by :func:`resolve`, which, like PyG's ``resolver()``, takes a
name or an entry itself and names every allowed value when it fails.
"""

from __future__ import annotations

import re

from gnnmask.errors import UserError

__all__ = ["Registry", "first_sentence", "resolve"]

_ABBREVIATIONS = ("al", "e.g", "i.e", "cf", "vs", "etc", "Fig", "Eq", "resp")


def first_sentence(text: str | None) -> str:
    """The first full sentence of a docstring, whitespace collapsed: up to
    the first full stop that ends a word other than an abbreviation
    (``et al.``, ``e.g.``, ...)."""
    text = " ".join((text or "").split())
    for match in re.finditer(r"\.(?=\s|$)", text):
        word = text[:match.start()].rsplit(" ", 1)[-1].lstrip("(")
        if word not in _ABBREVIATIONS:
            return text[:match.end()]
    return text


class Registry(dict):
    """Names -> entries of one ``kind`` of choice (a ``dict``, in
    registration order).

    Args:
        kind: what the entries are, as the error messages name them (e.g.
            ``"--model"``, ``"mask rule"``).
        entries: initial ``{name: entry}``.
    """

    def __init__(self, kind: str, entries: dict | None = None):
        super().__init__(entries or {})
        self.kind = kind

    def register(self, entry=None, *, name: str | None = None):
        """Add ``entry`` under ``name`` (default: its ``name`` attribute, else
        its ``__name__``); usable as a class or function decorator. A second,
        different entry under a taken name is a ``ValueError``."""
        def add(obj):
            key = name or getattr(obj, "name", None) or obj.__name__
            if self.get(key, obj) is not obj:
                raise ValueError(f"{self.kind} name {key!r} registered twice")
            self[key] = obj
            return obj
        return add if entry is None else add(entry)

    def describe(self) -> dict[str, str]:
        """``{name: first sentence}`` of every entry (its ``summary()`` where it
        has one, else its docstring, or the entry itself when it is text)."""
        out = {}
        for key, entry in self.items():
            if isinstance(entry, str):
                out[key] = entry
            elif callable(getattr(entry, "summary", None)):
                out[key] = entry.summary()
            else:
                out[key] = first_sentence(getattr(entry, "__doc__", None))
        return out

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self)})"


def resolve(registry: Registry, query, *args, **kwargs):
    """The entry registered as ``query``; called with ``args``/``kwargs``
    when any are given (e.g. to instantiate a class). A non-string ``query``
    is taken to be an entry (or instance) already and returned as is. An
    unknown name is a one-line :class:`~gnnmask.errors.UserError` naming
    every allowed value."""
    if not isinstance(query, str):
        return query
    if query not in registry:
        raise UserError(f"unknown {registry.kind} {query!r}; allowed: {', '.join(registry)}")
    entry = registry[query]
    return entry(*args, **kwargs) if args or kwargs else entry
