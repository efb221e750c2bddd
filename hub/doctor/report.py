"""One check's outcome and the one-screen report."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

Status = Literal["ok", "warn", "fail"]
SYMBOL: dict[str, str] = {"ok": "✅", "warn": "⚠ ", "fail": "❌"}
RANK: dict[str, int] = {"ok": 0, "warn": 1, "fail": 2}


@dataclass
class Check:
    id: str
    status: Status
    title: str
    details: list[str] = field(default_factory=list)
    fix: str = ""

    @property
    def line(self) -> str:
        return f"{SYMBOL[self.status]} {self.id:<14} {self.title}"


def worst(checks: list[Check]) -> Status:
    return max((c.status for c in checks), key=RANK.__getitem__, default="ok")


def render(checks: list[Check], *, max_details: int = 4) -> str:
    """Every check on one line; problems get a few detail lines and their fix underneath."""
    lines = []
    for c in checks:
        lines.append(c.line)
        if c.status != "ok":
            shown = c.details[:max_details]
            lines.extend(f"     {d}" for d in shown)
            if len(c.details) > len(shown):
                lines.append(f"     (+{len(c.details) - len(shown)} more: sovhub doctor --json)")
            if c.fix:
                lines.append(f"     fix: {c.fix}")
    counts = {s: sum(c.status == s for c in checks) for s in ("ok", "warn", "fail")}
    lines.append(f"{counts['ok']} ok, {counts['warn']} warning(s), {counts['fail']} problem(s)")
    return "\n".join(lines)


def to_json(checks: list[Check]) -> str:
    return json.dumps({"status": worst(checks), "checks": [asdict(c) for c in checks]}, indent=2)
