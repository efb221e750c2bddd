"""`skills.content:` the blog, image and podcast pipelines."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from hub.config.base import Section


class ContentSkillsConfig(Section):
    blog_dir: Path | None = Field(None, description="the Astro site checkout")
    workflow: Path | None = Field(None, description="ComfyUI API-format workflow template")
    tts_engine: str = "espeak"
    voice: str = "casual_male"
