"""web_search: the web through the box's own SearXNG, for chat, both models, MCP and schedules.

Read-only. The query goes to the configured SearXNG and nowhere else (a cloud model may ask for a
search, but the search itself never goes to a cloud service).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from hub.jobs import SkillRun
from hub.registry import Permission, skill
from skills.web.searxng import SearchOutcome, search


class WebSearchParams(BaseModel):
    query: str = Field(min_length=1, max_length=400, description="What to search the web for")
    categories: list[str] | None = Field(None, max_length=5, description="SearXNG categories, e.g. [general, news]; "
                                         "default: skills.web.categories")
    language: str | None = Field(None, max_length=16, description="e.g. en, de-DE, all; default: skills.web.language")
    safesearch: Literal[0, 1, 2] | None = Field(None, description="0 off, 1 moderate, 2 strict")
    limit: int | None = Field(None, ge=1, le=50, description="results to return; default: skills.web.max_results")
    page: int = Field(1, ge=1, le=10)


@skill(
    name="web_search",
    description="Search the web through the box's own SearXNG (private, read-only): title, URL, snippet and "
    "engine of each result",
    params=WebSearchParams,
    result=SearchOutcome,
    permission=Permission.read,
    timeout_s=60,
    est_seconds=2,
    command="search",
    open_world=True,  # SearXNG asks the web's search engines (without the hub's identity)
)
async def web_search(run: SkillRun, params: WebSearchParams) -> SearchOutcome:
    outcome = await search(run.config.skills.web, params.query, categories=params.categories,
                           language=params.language, safesearch=params.safesearch, limit=params.limit,
                           page=params.page)
    await run.progress(1, 1, f"{len(outcome.results)} results")
    return outcome
