"""Injectable faults for the stand-ins, set by option at start or by `POST /_sim/faults` at run time.

A fault is a dict such as `{"kind": "status", "status": 429, "retry_after": 2, "times": 1}`.
Kinds:
- `status`: answer the next request(s) with HTTP `status` (and `retry-after` when given);
- `stall`: after `after_tokens` streamed tokens, go silent for `seconds`;
- `disconnect`: after `after_tokens` tokens, drop the connection mid-response;
- `leak_tool_calls` (SGLang): send tool calls as raw `[TOOL_CALLS]` text in `content`
  (`format`: "args" = `[TOOL_CALLS]name[ARGS]{...}`, "json" = `[TOOL_CALLS][{...}]`);
- `error_event` (Anthropic): after `after_tokens`, send an SSE `error` event
  (`error_type`, default overloaded_error) and end the stream.
`times` is how many requests it hits (default 1; null = until cleared); `skip` lets that many
matching requests through first (e.g. fail the second call of a tool-using turn).
Health and metrics faults are plain settings: `health_status` (force /health's status),
`health_delay` (seconds before /health answers), `retractions` (sglang:num_retracted_reqs).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, fields
from typing import Any

from starlette.responses import Response

KINDS = {"status", "stall", "disconnect", "leak_tool_calls", "error_event"}


class SimDisconnect(Exception):
    """Raised inside a response body to make the server drop the connection mid-response."""


class _DropSimDisconnect(logging.Filter):
    """uvicorn logs an app exception with a traceback; a simulated disconnect is not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, SimDisconnect):
                return False
            if isinstance(exc, BaseExceptionGroup):
                if any(isinstance(e, SimDisconnect) for e in exc.exceptions):
                    return False
            exc = exc.__cause__ or exc.__context__
        return True


logging.getLogger("uvicorn.error").addFilter(_DropSimDisconnect())


@dataclass
class Fault:
    kind: str
    status: int = 500
    retry_after: float | None = None
    after_tokens: int = 0
    seconds: float = 3600.0
    times: int | None = 1
    message: str = "simulated failure"
    error_type: str | None = None
    format: str = "args"
    skip: int = 0  # let this many matching requests through first

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Fault:
        if not isinstance(raw, dict) or raw.get("kind") not in KINDS:
            raise ValueError(f"fault needs a kind in {sorted(KINDS)}: {raw!r}")
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown fault keys {sorted(unknown)}")
        return cls(**raw)


@dataclass
class FaultBook:
    faults: list[Fault] = field(default_factory=list)
    health_status: int | None = None
    health_delay: float = 0.0
    retractions: int = 0

    def update(self, body: dict[str, Any]) -> None:
        """Apply a `/_sim/faults` body: `clear`, `add` (list of faults) and the plain settings."""
        if body.get("clear"):
            self.faults.clear()
            self.health_status, self.health_delay, self.retractions = None, 0.0, 0
        for raw in body.get("add", []):
            self.faults.append(Fault.parse(raw))
        if "health_status" in body:
            self.health_status = body["health_status"]
        if "health_delay" in body:
            self.health_delay = float(body["health_delay"])
        if "retractions" in body:
            self.retractions = int(body["retractions"])

    def take(self, kind: str) -> Fault | None:
        """The first pending fault of this kind, counting one use of it."""
        for fault in self.faults:
            if fault.kind == kind:
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "faults": [vars(f) for f in self.faults],
            "health_status": self.health_status,
            "health_delay": self.health_delay,
            "retractions": self.retractions,
        }


async def stall(fault: Fault) -> None:
    await asyncio.sleep(fault.seconds)


class BrokenResponse(Response):
    """Sends headers announcing a body, a fragment of it, then drops the connection."""

    def __init__(self) -> None:
        super().__init__(status_code=200, media_type="application/json")
        self.headers["content-length"] = "4096"

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": b'{"id": "', "more_body": True})
        raise SimDisconnect("simulated disconnect")
