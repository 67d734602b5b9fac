"""Named recipes: a published method's settings as its paper's code uses them.

A preset is one TOML file in this folder, ``<name>.toml`` (published recipes
are named ``<method>-paper``): a ``[preset]`` table describing it (``summary``,
the first sentence ``gnnmask list presets`` shows; ``paper``, the citation;
``differs``, where and why gnnmask's own default differs) and the run settings
themselves, spelled as in a ``--config`` file (RunConfig fields, ``extra`` as a
table). ``--preset NAME`` starts from those settings; a ``--config`` file and
the command line override them; every record names its preset
(``config.preset``) and holds every resolved setting. From Python:
:func:`preset_config`.

Adding a preset is adding one file; it registers in :data:`PRESETS` when this
package is imported.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from gnnmask.errors import UserError
from gnnmask.registry import Registry, resolve

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

__all__ = ["PRESETS", "Preset", "get_preset"]


@dataclass(frozen=True)
class Preset:
    """A named set of run settings (one TOML file of :mod:`gnnmask.presets`).

    Attributes:
        name: the file's stem, given as ``--preset NAME``.
        text: the one-sentence description (``[preset] summary``).
        paper: the citation of the recipe's source, if any.
        differs: where gnnmask's default differs from this recipe, and why.
        settings: RunConfig fields (and ``extra``) the preset sets.
    """

    name: str
    text: str
    paper: str = ""
    differs: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        return self.text

    @classmethod
    def from_toml(cls, name: str, text: str) -> Preset:
        values = tomllib.loads(text)
        meta = values.pop("preset", None)
        if not isinstance(meta, dict) or not isinstance(meta.get("summary"), str):
            raise ValueError(f"preset {name!r} has no [preset] summary")
        unknown = sorted(set(meta) - {"summary", "paper", "differs"})
        if unknown:
            raise ValueError(f"preset {name!r}: unknown [preset] key {unknown[0]!r}")
        return cls(name, meta["summary"], meta.get("paper", ""), meta.get("differs", ""),
                   values)


def _load() -> Registry:
    registry = Registry("--preset")
    for entry in sorted(resources.files(__name__).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            name = entry.name[:-len(".toml")]
            registry.register(Preset.from_toml(name, entry.read_text()), name=name)
    return registry


#: Every shipped preset, by name.
PRESETS: Registry = _load()


def get_preset(name) -> Preset:
    """The preset called ``name`` (or ``name`` itself, a :class:`Preset`); a
    one-line :class:`~gnnmask.errors.UserError` naming the allowed ones."""
    if not isinstance(name, (str, Preset)):
        raise UserError(f"--preset {name!r} is invalid; allowed: {', '.join(PRESETS)}")
    return resolve(PRESETS, name)
