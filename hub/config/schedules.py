"""`schedules:` skills run on a timetable (cron, interval, one-shot), each in its own time zone.

The skill and its params are checked against the registry when the hub starts (the registry is not
known while the file is read); the timetable itself is checked here, with the YAML line.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from hub.config.base import Section


class ScheduleConfig(Section):
    name: str = Field(description="unique name, used by `sovhub schedule pause|resume` and in announcements")
    skill: str
    params: dict[str, Any] = Field(default_factory=dict)
    cron: str | None = Field(None, description="crontab expression (0 or 7 = Sunday) or @daily/@hourly/...")
    interval_s: float | None = Field(None, gt=0)
    at: str | None = Field(None, description="one-shot local time, ISO 8601 (2026-12-24T18:00)")
    timezone: str = "UTC"
    room: str | None = Field(None, description="Matrix room for announcements; default matrix.announce_room")
    enabled: bool = True
    grace_s: float | None = Field(None, gt=0, description="a slot missed by more than this is skipped (default 6 h)")

    @model_validator(mode="after")
    def _timetable(self) -> ScheduleConfig:
        from hub.cron.triggers import ScheduleError, from_fields

        try:
            from_fields(cron=self.cron, interval_s=self.interval_s, at=self.at, timezone=self.timezone)
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None
        return self
