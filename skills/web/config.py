"""`skills.web:` web search through the box's own SearXNG, and the research step of publish_article."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from hub.config.base import Section
from hub.config.sections import skill_config


@skill_config("web")
class WebSkillsConfig(Section):
    searxng_url: str = Field("http://127.0.0.1:8888", description=(
        "the local SearXNG (its settings.yml must list json under search.formats); every web query "
        "goes there and nowhere else"))
    categories: list[str] = Field(default_factory=lambda: ["general"], description="SearXNG categories searched")
    language: str = Field("auto", description="SearXNG language: auto, all, or a code such as en or de-DE")
    safesearch: Literal[0, 1, 2] = Field(0, description="0 off, 1 moderate, 2 strict")
    max_results: int = Field(8, ge=1, le=50, description="results kept per query (SearXNG itself has no limit)")
    timeout_s: float = Field(15, gt=0)
    research: bool = Field(False, description="publish_article researches the web unless the call says research=false")
    research_queries: int = Field(3, ge=1, le=10, description="at most this many queries the local model proposes")
    research_results: int = Field(4, ge=1, le=20, description="results per research query offered to the model")

    @field_validator("searxng_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. http://127.0.0.1:8888")
        return value.rstrip("/")
