"""`schedules:` skills run on a timetable (cron, interval, one-shot)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hub.config.base import Section


class ScheduleConfig(Section):
    name: str
    skill: str
    params: dict[str, Any] = Field(default_factory=dict)
    cron: str | None = None
    interval_s: float | None = Field(None, gt=0)
    at: str | None = None
    timezone: str = "UTC"
    room: str | None = None
    enabled: bool = True
