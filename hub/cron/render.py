"""Text for people: schedule lines, run history and announcements (chat, CLI and logs share it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hub.cron.model import Schedule, ScheduleRun

STATUS_ICON = {"succeeded": "✅", "failed": "❌", "cancelled": "🚫", "rejected": "❌", "refused": "❌",
               "denied": "❌", "skipped": "⏭", "missed": "⚠️", "queued": "⏳", "running": "⚙️"}


def local_time(epoch: float | None, tz: str) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S %Z")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours = minutes // 60
    return f"{hours} h {minutes % 60:02d} min" if hours < 48 else f"{hours // 24} days {hours % 24} h"


def params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def run_line(run: ScheduleRun, tz: str) -> str:
    icon = STATUS_ICON.get(run.status, "•")
    parts = [f"{icon} {run.status}", local_time(run.started_at, tz)]
    if run.duration_s is not None and run.status not in ("skipped", "missed"):
        parts.append(duration(run.duration_s))
    if run.job_id:
        parts.append(f"job {run.job_id}")
    line = " · ".join(parts)
    return f"{line}: {one_line(run.error)}" if run.error else line


def schedule_markdown(schedule: Schedule, runs: list[ScheduleRun], *, markdown: bool = True) -> str:
    bold, code = ("**", "`") if markdown else ("", "")
    head = (f"{bold}{schedule.name}{bold} ({schedule.state}) — {code}{schedule.skill}"
            f"{' ' + params_text(schedule.params) if schedule.params else ''}{code} {schedule.trigger.describe()}")
    details = [f"next: {local_time(schedule.next_run_at, schedule.timezone)}" if schedule.state == "active"
               else f"next: - ({schedule.state})"]
    if schedule.room:
        details.append(f"room {schedule.room}")
    if schedule.source == "config":
        details.append("from config")
    lines = [head, "  " + " · ".join(details)]
    lines += [f"  - {run_line(r, schedule.timezone)}" for r in runs]
    return "\n".join(lines)


def one_line(text: str | None, limit: int = 300) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def result_summary(result: dict[str, Any] | None, limit: int = 400) -> str:
    """A short text for a skill's result dict (files by path, text as is)."""
    if not result:
        return ""
    if len(result) == 1:
        return one_line(str(next(iter(result.values()))), limit)
    return one_line("; ".join(f"{k}: {v}" for k, v in result.items()), limit)


def announcement(schedule: Schedule, run: ScheduleRun, result: dict[str, Any] | None = None) -> str:
    icon = STATUS_ICON.get(run.status, "•")
    who = f"{schedule.name} ({schedule.skill})"
    if run.status == "succeeded":
        summary = result_summary(result)
        text = f"{icon} {who} done in {duration(run.duration_s)}"
        return f"{text}: {summary}" if summary else text
    if run.status == "missed":
        return f"{icon} {who} did not run: {one_line(run.error)}"
    job = f" (job {run.job_id})" if run.job_id else ""
    return f"{icon} {who} {run.status} after {duration(run.duration_s)}{job}: {one_line(run.error) or 'no detail'}"
