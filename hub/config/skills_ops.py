"""`skills.ops:` diagnostics and restarts for the box's operator."""

from __future__ import annotations

from pydantic import Field

from hub.config.base import Section


class OpsSkillsConfig(Section):
    log_lines: int = Field(50, gt=0)
