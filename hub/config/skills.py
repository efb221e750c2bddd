"""`skills:` which skills are enabled, and their own settings."""

from __future__ import annotations

from pydantic import Field

from hub.config.base import Section
from hub.config.skills_content import ContentSkillsConfig
from hub.config.skills_ops import OpsSkillsConfig


class SkillsConfig(Section):
    enabled: list[str] | None = Field(None, description="None = every discovered skill")
    content: ContentSkillsConfig = Field(default_factory=ContentSkillsConfig)
    ops: OpsSkillsConfig = Field(default_factory=OpsSkillsConfig)
