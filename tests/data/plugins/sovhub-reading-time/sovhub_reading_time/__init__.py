"""An example sovhub skill plugin: words and reading time of a text.

Installed with pip, it is found through the `sovhub.skills` entry point in its pyproject.toml and
becomes a chat command (/readtime), a tool for both models, an MCP tool and something a schedule
can run, exactly like a built-in skill. Its setting comes from the hub's config:

    skills:
      settings:
        reading_time: {words_per_minute: 200}
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from hub.jobs import SkillRun
from hub.registry import Permission, skill

DEFAULT_WPM = 230
WORD_RE = re.compile(r"[\w'’-]+")


class ReadingTimeParams(BaseModel):
    text: str = Field(min_length=1, max_length=200_000, description="The text to measure")
    words_per_minute: int | None = Field(None, ge=50, le=1000, description="default: the plugin's setting, or 230")


class ReadingTimeResult(BaseModel):
    words: int
    minutes: float
    words_per_minute: int


@skill(
    name="reading_time",
    description="Count the words of a text and estimate how many minutes it takes to read",
    params=ReadingTimeParams,
    result=ReadingTimeResult,
    permission=Permission.read,
    timeout_s=10,
    est_seconds=0.1,
    command="readtime",
)
async def reading_time(run: SkillRun, params: ReadingTimeParams) -> ReadingTimeResult:
    settings = run.config.skills.settings.get("reading_time", {})
    wpm = params.words_per_minute or int(settings.get("words_per_minute", DEFAULT_WPM))
    words = len(WORD_RE.findall(params.text))
    await run.progress(1, 1, f"{words} words")
    return ReadingTimeResult(words=words, minutes=round(words / wpm, 2), words_per_minute=wpm)
