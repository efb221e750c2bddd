"""The operator's GPU controls, one set for every surface (CLI, `/gpu` in chat, MCP, status page).

Every change is a request to the scheduler (`ResidentScheduler.control`), which accepts it or says
why not; this module only parses, routes and formats, so each surface answers in the same words.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from hub.errors import HubError

OPS = ("load", "unload", "pin", "unpin")


@dataclass(frozen=True)
class Answer:
    ok: bool
    message: str


def parse_for(text: str) -> float:
    """`30m`, `2h`, `90s`, `90` -> seconds (the same rules as schedule intervals)."""
    from hub.cron.triggers import parse_duration

    try:
        return parse_duration(text)
    except Exception as exc:
        raise HubError(f"invalid pin duration {text!r} (e.g. 30m, 2h)") from exc


async def control(hub: Any, op: str, name: str | None, *, by: str, seconds: float | None = None,
                  context: Any = None) -> Answer:
    """Ask the scheduler; a hub without residents refuses every change with the reason."""
    if op not in OPS:
        return Answer(False, f"unknown GPU control {op!r} (one of {', '.join(OPS)})")
    fn = getattr(hub.gpu, "control", None)
    if fn is None:
        return Answer(False, "no resident model servers are configured (residents: in the config)")
    r = await fn(op, name, by=by, seconds=seconds, context=context)
    return Answer(r.ok, r.message)


async def logs(hub: Any, name: str, lines: int = 50) -> str:
    fn = getattr(hub.gpu, "logs", None)
    if fn is None:
        raise HubError("no resident model servers are configured (residents: in the config)")
    return await fn(name, lines)


def _secs(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s / 60:.0f} min" if s >= 120 else f"{s:.0f} s"


def describe(snapshot: dict[str, Any], now: float | None = None) -> str:
    """What is resident, pins, TTLs, and the queue with ETAs, as a few lines of markdown."""
    now = now or time.time()
    residents = snapshot.get("residents") or {}
    if not residents:
        return "No resident model servers are configured."
    lines = [f"**GPU**: {snapshot.get('resident') or 'nothing resident'} ({snapshot.get('state', '?')})"]
    busy = snapshot.get("busy_with") or []
    if busy:
        lines.append("Busy with: " + ", ".join(str(b) for b in busy))
    for name, info in residents.items():
        bits = [f"{name}{' (default)' if info.get('default') else ''}: {info.get('phase')}"
                + (f" on {info['node']}" if info.get("node") else "")]
        pin = info.get("pinned")
        if pin:
            left = pin.get("left_s")
            bits.append(f"pinned by {pin.get('by')}" + (f" for {_secs(left)} more" if left is not None else ""))
        if info.get("ttl_s"):
            bits.append(f"ttl {_secs(info['ttl_s'])}")
        if info.get("queue_limit"):
            bits.append(f"queue limit {info['queue_limit']}")
        if info.get("parked"):
            bits.append("unloaded by the operator")
        if info.get("phase") != "ready" and info.get("eta_s") is not None:
            bits.append(f"ready in about {_secs(info['eta_s'])}")
        if info.get("error"):
            bits.append(f"last start failed: {str(info['error']).splitlines()[0][:120]}")
        lines.append(" · ".join(bits))
    for name, node in (snapshot.get("nodes") or {}).items():  # several nodes: each one's state
        loaded = ", ".join(f"{r} ({p})" for r, p in (node.get("residents") or {}).items() if p != "stopped")
        lines.append(f"Node {name}: {node.get('state')}" + (f", {loaded}" if loaded else "")
                     + (f" · {node['error']}" if node.get("error") else ""))
    queue = snapshot.get("queue") or []
    if queue:
        lines.append("Queue:")
        for q in queue:
            lines.append(f"{q.get('position')}. {q.get('job_id')} → {q.get('resident')} ({q.get('job_class')}), "
                         f"waited {_secs(q.get('waited_s'))}, ETA {_secs(q.get('eta_s'))}")
    else:
        lines.append("Queue: empty")
    return "\n".join(f"- {line}" if i else line for i, line in enumerate(lines))
