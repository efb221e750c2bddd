"""The hub's configuration: one pydantic model per YAML section (one module each; the skill
families' sections live beside their skills, see `sections.py`).

The names below load on first use: a skill family's config module imports `hub.config.base`,
which must not pull in the loader (whose `skills:` model imports those very modules).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.config.loader import ConfigIssue, HubConfig, check_config, load_config

__all__ = ["ConfigIssue", "HubConfig", "check_config", "load_config"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hub.config import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'hub.config' has no attribute {name!r}")
