"""Trigger specs: what a schedule's timetable is, parsed from text and turned into APScheduler triggers.

Pure functions only. A spec is stored as JSON in `schedules.trigger`; the APScheduler trigger is
rebuilt from it at every start, so SQLite stays the one source of truth.

Cron expressions use standard crontab numbering (0 or 7 = Sunday). APScheduler 3 counts 0 as
Monday, so the day-of-week field is translated to day names before it reaches APScheduler.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from hub.errors import HubError


class ScheduleError(HubError):
    """A schedule definition or command was refused; the message says exactly why."""


KINDS = ("cron", "interval", "at")
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60, "minute": 60,
          "minutes": 60, "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600, "d": 86400,
          "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}
_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)?\s*([a-z]+)?$")
CRON_FIELDS = "minute hour day-of-month month day-of-week"


@dataclass(frozen=True)
class TriggerSpec:
    kind: str  # cron | interval | at
    cron: str | None = None
    interval_s: float | None = None
    at: str | None = None  # ISO local time in `timezone` (or with an explicit offset)
    timezone: str = "UTC"

    def to_json(self) -> str:
        data: dict[str, Any] = {"kind": self.kind}
        if self.kind == "cron":
            data["cron"] = self.cron
        elif self.kind == "interval":
            data["interval_s"] = self.interval_s
        else:
            data["at"] = self.at
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, timezone: str) -> TriggerSpec:
        data = json.loads(text)
        return cls(kind=data["kind"], cron=data.get("cron"), interval_s=data.get("interval_s"),
                   at=data.get("at"), timezone=timezone)

    def describe(self) -> str:
        if self.kind == "cron":
            return f"cron '{self.cron}' ({self.timezone})"
        if self.kind == "interval":
            return f"every {format_duration(self.interval_s or 0)}"
        return f"once at {self.at} ({self.timezone})"


# -- parsing ---------------------------------------------------------------------------------------
def check_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris or UTC)") from None


def parse_duration(text: str) -> float:
    """`90`, `90s`, `15m`, `15 minutes`, `2h`, `hour`, `1d`, `1w` -> seconds."""
    match = _DURATION_RE.match(text.strip().lower())
    if not match or not (match.group(1) or match.group(2)) or (match.group(2) or "s") not in UNITS:
        raise ScheduleError(f"invalid interval {text!r} (expected a number with s, m, h, d or w, e.g. 15m)")
    seconds = float(match.group(1) or 1) * UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise ScheduleError(f"invalid interval {text!r}: it must be longer than 0 seconds")
    return seconds


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def parse_trigger(text: str, timezone: str = "UTC") -> TriggerSpec:
    """`0 6 * * *` | `@daily` | `every 15m` | `at 2026-12-24T18:00` -> a checked TriggerSpec."""
    check_timezone(timezone)
    raw = " ".join(text.split())
    lower = raw.lower()
    if not raw:
        raise ScheduleError("empty trigger (expected a cron expression, 'every 15m' or 'at 2026-12-24T18:00')")
    if lower.startswith("every "):
        return checked(TriggerSpec("interval", interval_s=parse_duration(raw[6:]), timezone=timezone))
    if lower.startswith("at "):
        return checked(TriggerSpec("at", at=raw[3:].strip(), timezone=timezone))
    if re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d", raw):
        return checked(TriggerSpec("at", at=raw, timezone=timezone))
    return checked(TriggerSpec("cron", cron=ALIASES.get(lower, raw), timezone=timezone))


def from_fields(*, cron: str | None, interval_s: float | None, at: str | None, timezone: str) -> TriggerSpec:
    """The config form (exactly one of `cron`, `interval_s`, `at`)."""
    given = [k for k, v in (("cron", cron), ("interval_s", interval_s), ("at", at)) if v is not None]
    if len(given) != 1:
        raise ScheduleError("give exactly one of cron, interval_s or at"
                            + (f" (got {', '.join(given)})" if given else ""))
    if cron is not None:
        return checked(TriggerSpec("cron", cron=ALIASES.get(cron.strip().lower(), cron.strip()), timezone=timezone))
    if interval_s is not None:
        if interval_s <= 0:
            raise ScheduleError("interval_s must be > 0")
        return checked(TriggerSpec("interval", interval_s=float(interval_s), timezone=timezone))
    return checked(TriggerSpec("at", at=str(at).strip(), timezone=timezone))


def checked(spec: TriggerSpec) -> TriggerSpec:
    """Raise ScheduleError unless the spec builds into an APScheduler trigger."""
    build(spec)
    return spec


# -- APScheduler triggers --------------------------------------------------------------------------
def build(spec: TriggerSpec, *, anchor: float | None = None):
    """The APScheduler trigger for a spec; `anchor` (epoch s) keeps interval slots in phase."""
    tz = check_timezone(spec.timezone)
    if spec.kind == "cron":
        return cron_trigger(spec.cron or "", tz)
    if spec.kind == "interval":
        start = datetime.fromtimestamp(anchor, tz) if anchor is not None else None
        return IntervalTrigger(seconds=spec.interval_s, start_date=start, timezone=tz)
    if spec.kind == "at":
        return DateTrigger(run_date=parse_at(spec.at or "", tz), timezone=tz)
    raise ScheduleError(f"unknown trigger kind {spec.kind!r} (expected one of {', '.join(KINDS)})")


def cron_trigger(expr: str, tz: ZoneInfo) -> CronTrigger:
    fields = expr.split()
    if len(fields) != 5:
        raise ScheduleError(f"invalid cron expression {expr!r}: it has {len(fields)} field(s), expected 5 "
                            f"({CRON_FIELDS})")
    names = CRON_FIELDS.split()
    parts = dict(zip(("minute", "hour", "day", "month"), fields[:4], strict=True))
    for key, label in zip(("minute", "hour", "day", "month"), names[:4], strict=True):
        try:
            CronTrigger(**{key: parts[key]}, timezone=tz)
        except ValueError as exc:
            raise ScheduleError(f"invalid cron expression {expr!r}: {label} field {parts[key]!r}: "
                                f"{_clean(exc)}") from None
    try:
        dow = translate_day_of_week(fields[4])
    except ScheduleError as exc:
        raise ScheduleError(f"invalid cron expression {expr!r}: day-of-week {exc}") from None
    try:
        return CronTrigger(**parts, day_of_week=dow, timezone=tz)
    except ValueError as exc:
        raise ScheduleError(f"invalid cron expression {expr!r}: {_clean(exc)}") from None


def _clean(exc: Exception) -> str:
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith("Error validating expression") and ": " in text else text


def translate_day_of_week(field: str) -> str:
    """Standard crontab day-of-week (0/7 = Sunday, names, ranges, steps) -> APScheduler day names."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"{part!r}: the step must be a whole number above 0")
            step = int(step_text)
        if base == "*":
            lo, hi = 0, 6
        elif "-" in base:
            a, _, b = base.partition("-")
            lo, hi = _day(a), _day(b, end=True)
            if lo > hi:
                raise ScheduleError(f"{part!r}: the range goes backwards")
        else:
            lo = hi = _day(base)
            if step_text:
                hi = 6
        days.update(d % 7 for d in range(lo, hi + 1, step))
    if not days:
        raise ScheduleError(f"{field!r} matches no day")
    return ",".join(DAY_NAMES[d] for d in sorted(days))


def _day(token: str, end: bool = False) -> int:
    if token in DAY_NAMES:
        return DAY_NAMES.index(token)
    if token.isdigit() and 0 <= int(token) <= 7:
        value = int(token)
        return value if (end or value != 7) else 0
    raise ScheduleError(f"{token!r} is not a day (0-7 with 0 or 7 = Sunday, or sun..sat)")


def parse_at(text: str, tz: ZoneInfo) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ScheduleError(f"invalid one-shot time {text!r} (expected ISO 8601, e.g. 2026-12-24T18:00)") from None
    return when.replace(tzinfo=tz) if when.tzinfo is None else when


def as_epoch(when: datetime | None) -> float | None:
    return when.timestamp() if when is not None else None
