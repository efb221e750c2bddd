"""Provider health from call outcomes: a failure marks a provider down for a cool-down period."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class _Mark:
    ok_at: float = 0.0
    failed_at: float = 0.0
    error: str = ""


class Health:
    def __init__(self, cooldown_s: float = 30.0, clock=time.monotonic) -> None:
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.marks: dict[str, _Mark] = {}

    def ok(self, name: str) -> None:
        self.marks.setdefault(name, _Mark()).ok_at = self.clock()

    def failed(self, name: str, error: str) -> None:
        mark = self.marks.setdefault(name, _Mark())
        mark.failed_at, mark.error = self.clock(), error

    def state(self, name: str) -> str:
        mark = self.marks.get(name)
        if mark is None:
            return "unknown"
        if mark.failed_at > mark.ok_at and self.clock() - mark.failed_at < self.cooldown_s:
            return "down"
        return "up" if mark.ok_at else "unknown"

    def error(self, name: str) -> str:
        mark = self.marks.get(name)
        return mark.error if mark else ""
