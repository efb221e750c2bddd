"""Words to a schedule request: `key=value` params and the chat form of `/schedule add`.

Chat: `/schedule add [name] "<cron>"|every 15m|at <time> [Area/City] <skill> [key=value ...] [--tz Z]
[--room R] [--grace 1h]`; the cron expression may be quoted or written as five bare fields, and the
time zone may follow the timetable as a bare IANA name (chat front ends may strip quotes and options).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hub import kvargs as kv
from hub.cron.triggers import ALIASES, UNITS, ScheduleError, parse_duration

ADD_USAGE = ('usage: /schedule add [name] "<cron>"|every <interval>|at <time> [Europe/Paris] <skill> '
             "[key=value ...]")
_CRON_FIELD = re.compile(r"^[\d*/,\-?]+$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d.*)?$")


@dataclass
class AddRequest:
    trigger: str
    skill: str
    name: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"
    room: str | None = None
    grace_s: float | None = None


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """`key=value` pairs (the shared rules of `hub.kvargs`), refused as a ScheduleError."""
    try:
        return kv.parse_assignments(items)
    except kv.ArgumentError as exc:
        raise ScheduleError(str(exc)) from None


def split_words(text: str) -> list[str]:
    try:
        return kv.split_words(text)
    except kv.ArgumentError as exc:
        raise ScheduleError(str(exc)) from None


def _looks_like_trigger(words: list[str]) -> bool:
    first = words[0]
    return (" " in first.strip() or first.lower() in ALIASES or first.lower() in ("every", "at")
            or bool(_ISO.match(first)) or bool(_CRON_FIELD.match(first)))


def _take_trigger(words: list[str]) -> tuple[str, list[str]]:
    first = words[0]
    if first.lower() == "every" and len(words) > 2 and re.match(r"^\d+(\.\d+)?$", words[1]) \
            and words[2].lower() in UNITS:
        return f"every {words[1]}{words[2].lower()}", words[3:]  # every 15 minutes
    if first.lower() in ("every", "at") and len(words) > 1:
        if first.lower() == "at" and len(words) > 2 and re.match(r"^\d{1,2}:\d{2}", words[2]) \
                and _ISO.match(words[1]):
            return f"at {words[1]}T{words[2]}", words[3:]
        return f"{first} {words[1]}", words[2:]
    if _CRON_FIELD.match(first) and " " not in first:
        fields = words[:5]
        if len(fields) < 5 or not all(_CRON_FIELD.match(f) or f.isalpha() for f in fields):
            raise ScheduleError(f"a cron expression needs 5 fields (minute hour day-of-month month day-of-week); "
                                f"quote it: \"{' '.join(fields)}\"")
        return " ".join(fields), words[5:]
    return first, words[1:]


def parse_add(text: str, default_tz: str = "UTC") -> AddRequest:
    words = split_words(text)
    options: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("--tz", "--room", "--grace", "--name"):
            if i + 1 >= len(words):
                raise ScheduleError(f"{word} needs a value")
            options[word[2:]] = words[i + 1]
            i += 2
            continue
        if word.startswith(("--tz=", "--room=", "--grace=", "--name=")):
            key, _, value = word[2:].partition("=")
            options[key] = value
        else:
            rest.append(word)
        i += 1
    if not rest:
        raise ScheduleError(ADD_USAGE)
    name = options.get("name")
    if name is None and not _looks_like_trigger(rest):
        name, rest = rest[0], rest[1:]
    if not rest:
        raise ScheduleError(f"missing the timetable and the skill; {ADD_USAGE}")
    trigger, rest = _take_trigger(rest)
    if rest and ("/" in rest[0] or rest[0] in ("UTC", "GMT")) and "=" not in rest[0]:
        options.setdefault("tz", rest[0])  # `0 6 * * * Europe/Paris podcast`: a zone after the timetable
        rest = rest[1:]
    if not rest:
        raise ScheduleError(f"missing the skill to run; {ADD_USAGE}")
    skill, assignments = rest[0], rest[1:]
    return AddRequest(trigger=trigger, skill=skill, name=name, params=parse_assignments(assignments),
                      timezone=options.get("tz", default_tz), room=options.get("room"),
                      grace_s=parse_duration(options["grace"]) if "grace" in options else None)
