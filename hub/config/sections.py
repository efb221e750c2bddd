"""Config sections that live beside their owners: each skill family keeps its model in its own
package (`skills/<family>/config.py`) and registers it here under `skills.<family>`.

The config core names no family and imports none of their modules by name: `skill_sections()`
imports the `config` module of each package of the built-in skills package once (as
`hub.plugins` discovers their skills), and each such module registers its model with
`@skill_config("<family>")`. The section then is an ordinary field of `skills:` — same YAML,
same validation, the same line-numbered errors from `sovhub config check` — and reads as
`config.skills.<family>`. A family's config module imports only `hub.config.base` and this module,
so it can be imported first, alone, or from the discovery.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable
from typing import TypeVar

from hub.config.base import Section

BUILTIN_SKILLS = "skills"  # the built-in skills package (also what `hub.plugins` discovers first)
RESERVED = frozenset({"enabled", "paths", "settings"})  # the keys `skills:` has of its own

S = TypeVar("S", bound=type[Section])

_registered: dict[str, type[Section]] = {}
_discovered = False


class SectionClash(ValueError):
    pass


def skill_config(name: str) -> Callable[[S], S]:
    """Register the decorated model as the section `skills.<name>`."""

    def register(model: S) -> S:
        if name in RESERVED:
            raise SectionClash(f"skills.{name} is a key of skills: itself; a skill family cannot take it")
        known = _registered.get(name)
        if known is not None and known.__qualname__ != model.__qualname__:
            raise SectionClash(f"skills.{name} is registered twice: {_label(known)} and {_label(model)}")
        _registered[name] = model
        return model

    return register


def skill_sections() -> dict[str, type[Section]]:
    """Every registered section by name (sorted), after importing the built-in families' config modules."""
    global _discovered
    if not _discovered:
        _discovered = True
        package = importlib.import_module(BUILTIN_SKILLS)
        for info in pkgutil.iter_modules(package.__path__):
            name = f"{BUILTIN_SKILLS}.{info.name}.config"
            if info.ispkg and importlib.util.find_spec(name) is not None:
                importlib.import_module(name)
    return dict(sorted(_registered.items()))


def _label(model: type) -> str:
    return f"{model.__module__}.{model.__qualname__}"
