"""Context: who and what caused an event, a job or a cost row (Home Assistant style).

Every outcome carries one, so a reply, a swap or a failed job can be traced back to the message,
MCP call or schedule that started it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

Origin = Literal["matrix", "mcp", "cron", "cli", "http"]
ORIGINS: tuple[str, ...] = ("matrix", "mcp", "cron", "cli", "http")


def new_id() -> str:
    """16 random hex digits (64 bits; `uuid4().hex[:16]` had 60 and cost twice the CPU)."""
    return os.urandom(8).hex()


@dataclass(frozen=True)
class Context:
    origin: str
    user: str | None = None
    parent_id: str | None = None
    id: str = field(default_factory=new_id)
    created_at: float = field(default_factory=time.time)
    privacy: str | None = None  # "local-only": this request and all it causes never reach the cloud

    def __post_init__(self) -> None:
        if self.origin not in ORIGINS:
            raise ValueError(f"unknown context origin {self.origin!r} (expected one of {', '.join(ORIGINS)})")

    @classmethod
    def new(cls, origin: str, user: str | None = None, parent: Context | None = None) -> Context:
        return cls(origin=origin, user=user, parent_id=parent.id if parent else None,
                   privacy=parent.privacy if parent else None)

    def child(self, origin: str | None = None, user: str | None = None) -> Context:
        """A context caused by this one (a tool call inside a turn, a job step); keeps its privacy mark."""
        return replace(
            self, origin=origin or self.origin, user=user or self.user, parent_id=self.id,
            id=new_id(), created_at=time.time(),
        )

    def restricted(self) -> Context:
        """The same context marked local-only (see hub/privacy.py); the mark is never removed."""
        return replace(self, privacy="local-only")

    def as_dict(self) -> dict[str, Any]:
        # every field is a str, float or None: no deep copy needed (`dataclasses.asdict` recursed
        # into and deep-copied each value, on every job row and event)
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Context:
        return cls(**{k: data[k] for k in _FIELDS if k in data})


_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Context))
