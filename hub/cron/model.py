"""Plain data: a schedule as stored in SQLite, and one of its runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hub.cron.triggers import TriggerSpec

RUN_OPEN = ("queued", "running")
DEFAULT_GRACE_S = 6 * 3600.0  # a run missed by more than this (hub down) is recorded as missed, not run


@dataclass(frozen=True)
class Schedule:
    id: str
    name: str
    skill: str
    params: dict[str, Any]
    trigger: TriggerSpec
    room: str | None = None
    enabled: bool = True
    source: str = "runtime"  # runtime | config
    created_at: float = 0.0
    updated_at: float = 0.0
    last_run_at: float | None = None
    next_run_at: float | None = None
    grace_s: float | None = None
    created_by: str | None = None
    last_status: str | None = None
    paused_by: str | None = None  # runtime (CLI, chat) | config (`enabled: false`)

    @property
    def timezone(self) -> str:
        return self.trigger.timezone

    @property
    def grace(self) -> float:
        return self.grace_s if self.grace_s is not None else DEFAULT_GRACE_S

    @property
    def done(self) -> bool:
        """A one-shot that already fired (or was missed) never runs again."""
        return self.trigger.kind == "at" and self.last_run_at is not None

    @property
    def state(self) -> str:
        if self.done:
            return "done"
        return "active" if self.enabled else "paused"

    def definition(self) -> tuple[Any, ...]:
        """What APScheduler's copy depends on; a change means reload that job."""
        return (self.skill, json.dumps(self.params, sort_keys=True), self.trigger.to_json(), self.timezone,
                self.enabled, self.grace, self.updated_at, self.done)

    @classmethod
    def from_row(cls, row: Any) -> Schedule:
        return cls(
            id=row["id"], name=row["name"], skill=row["skill"], params=json.loads(row["params"] or "{}"),
            trigger=TriggerSpec.from_json(row["trigger"], row["timezone"]), room=row["room"],
            enabled=bool(row["enabled"]), source=row["source"], created_at=row["created_at"],
            updated_at=row["updated_at"], last_run_at=row["last_run_at"], next_run_at=row["next_run_at"],
            grace_s=row["grace_s"], created_by=row["created_by"], last_status=row["last_status"],
            paused_by=row["paused_by"])


@dataclass(frozen=True)
class ScheduleRun:
    id: int
    schedule_id: str
    job_id: str | None
    context_id: str | None
    started_at: float
    finished_at: float | None
    status: str  # queued | running | succeeded | failed | cancelled | rejected | skipped | missed | ...
    error: str | None
    scheduled_for: float | None

    @property
    def duration_s(self) -> float | None:
        return self.finished_at - self.started_at if self.finished_at is not None else None

    @classmethod
    def from_row(cls, row: Any) -> ScheduleRun:
        return cls(id=row["id"], schedule_id=row["schedule_id"], job_id=row["job_id"],
                   context_id=row["context_id"], started_at=row["started_at"], finished_at=row["finished_at"],
                   status=row["status"], error=row["error"], scheduled_for=row["scheduled_for"])
