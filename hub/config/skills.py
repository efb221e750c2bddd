"""`skills:` which skills are enabled, and their own settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from hub.config.base import Section
from hub.config.skills_content import ContentSkillsConfig
from hub.config.skills_ops import OpsSkillsConfig
from hub.config.skills_web import WebSkillsConfig


class SkillsConfig(Section):
    enabled: list[str] | None = Field(None, description="None = every discovered skill")
    paths: list[Path] = Field(default_factory=list, description=(
        "folders of skill plugins: each `name.py` or `name/` package in them is one plugin "
        "(entry points of the group `sovhub.skills` are loaded too)"))
    settings: dict[str, dict[str, Any]] = Field(default_factory=dict, description=(
        "plugins' own settings, by plugin name (read as run.config.skills.settings['name']); "
        "`key_env:` / `key_file:` give secrets"))
    content: ContentSkillsConfig = Field(default_factory=ContentSkillsConfig)
    ops: OpsSkillsConfig = Field(default_factory=OpsSkillsConfig)
    web: WebSkillsConfig = Field(default_factory=WebSkillsConfig)
