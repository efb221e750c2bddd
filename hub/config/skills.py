"""`skills:` which skills are enabled, plugins' settings, and one section per skill family.

The families' sections are not defined here: each lives beside its skills and registers itself
(`hub/config/sections.py`); this module makes them fields of `skills:`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, create_model

from hub.config.base import Section
from hub.config.sections import skill_sections


class SkillsBase(Section):
    enabled: list[str] | None = Field(None, description="None = every discovered skill")
    paths: list[Path] = Field(default_factory=list, description=(
        "folders of skill plugins: each `name.py` or `name/` package in them is one plugin "
        "(entry points of the group `sovhub.skills` are loaded too)"))
    settings: dict[str, dict[str, Any]] = Field(default_factory=dict, description=(
        "plugins' own settings, by plugin name (read as run.config.skills.settings['name']); "
        "`key_env:` / `key_file:` give secrets"))


def skills_model(sections: dict[str, type[Section]]) -> type[SkillsBase]:
    """`skills:` with one field per registered section, each defaulting to its model's defaults."""
    fields: dict[str, Any] = {name: (model, Field(default_factory=model)) for name, model in sections.items()}
    return create_model("SkillsConfig", __base__=SkillsBase, __module__=__name__, **fields)


SkillsConfig = skills_model(skill_sections())
