"""What the status page shows, gathered from the hub: one JSON-safe dict for page, API and metrics.

Reads only: `hub.status()`, `hub.gpu.snapshot()`, the jobs and costs tables, the chat budget,
health probes of the backends (cached, so a reload never hammers SGLang's generating /health) and
the Matrix bridge's own status from `hub.extras["matrix"]`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from bridges.status.metrics import HubMetrics
from hub.chat.budget import spend_by_client
from hub.events import Event

if TYPE_CHECKING:
    from hub.core import Hub

log = logging.getLogger(__name__)

PROBE_TTL_S = 10.0
PROBE_TIMEOUT_S = 2.0
RECENT_JOBS = 15
RECENT_SWAPS = 15
# keys of hub.status() that have their own place in the collected status (the rest goes to "extras")
SHOWN_ELSEWHERE = ("uptime_s", "skills", "jobs", "running", "gpu", "spend", "matrix", "status_page", "gpu_scheduler",
                   "storage", "schedules", "api")
ACTIVE_STATES = ("queued", "running", "waiting", "waiting_approval", "waiting_gpu")


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if hasattr(value, "model_dump"):
        return _jsonable(value.model_dump(mode="json"))
    if hasattr(value, "get_secret_value"):
        return "**********"
    return str(value)


class StatusService:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.metrics = HubMetrics()
        self.url: str | None = None
        self._probes: dict[str, dict[str, Any]] = {}
        self._probed_at = 0.0
        self._probe_lock = asyncio.Lock()
        self._unsubscribe = hub.bus.listen("*", self._on_event)

    def close(self) -> None:
        self._unsubscribe()

    def status(self) -> dict[str, Any]:
        """What `hub.status()` reports about the page itself (it sits in `hub.extras`)."""
        return {"url": self.url}

    def _on_event(self, event: Event) -> None:
        self.metrics.on_event(event)
        if event.type.startswith("gpu_"):
            self.metrics.fold_swaps(self._swaps())

    def _swaps(self) -> list[dict[str, Any]]:
        try:
            return _jsonable(list(self.hub.gpu.snapshot().swaps))
        except Exception:
            log.exception("GPU snapshot failed")
            return []

    # -- the one collection ------------------------------------------------------------------------
    async def collect(self) -> dict[str, Any]:
        hub = self.hub
        base = await hub.status()
        snap = hub.gpu.snapshot()
        gpu = _jsonable(snap)
        self.metrics.fold_swaps(gpu.get("swaps") or [])
        gpu["swaps"] = (gpu.get("swaps") or [])[-RECENT_SWAPS:][::-1]
        residents = {name: {"kind": r.kind, "memory_gb": r.memory_gb, "default": r.default,
                            **(gpu.get("residents") or {}).get(name, {})}
                     for name, r in hub.config.residents.servers.items()}
        out: dict[str, Any] = {
            "generated_at": time.time(),
            "uptime_s": base.get("uptime_s"),
            "skills": base.get("skills"),
            "jobs_by_status": base.get("jobs", {}),
            "running": base.get("running", []),
            "gpu": gpu,
            "residents": residents,
            "recent_jobs": await self._recent_jobs(),
            "spend": await self._spend(),
            "usage": await self._usage(),
            "clients": await spend_by_client(hub.store.db),
            "backends": await self._backends(snap),
            "matrix": self._matrix(base),
            "storage": _jsonable(base.get("storage") or {}),
            "schedules": _jsonable(base.get("schedules")) if base.get("schedules") is not None else None,
            "actions_enabled": self.token is not None,
            "timeline": _jsonable(hub.gpu.timeline()) if hasattr(hub.gpu, "timeline") else None,
            "gpu_logs": await self._gpu_logs(),
        }
        gateway = hub.extras.get("api")
        if gateway is not None:
            out["api"] = _jsonable(gateway.status())
        extras = {k: v for k, v in base.items() if k not in SHOWN_ELSEWHERE}
        if extras:
            out["extras"] = _jsonable(extras)
        return out

    async def _gpu_logs(self, lines: int = 15) -> dict[str, str]:
        """The last lines of each resident's output (a driver that cannot say is shown as such)."""
        fn = getattr(self.hub.gpu, "logs", None)
        if fn is None:
            return {}
        out = {}
        for name in self.hub.config.residents.servers:
            try:
                out[name] = await asyncio.wait_for(fn(name, lines), 3.0)
            except Exception as exc:
                out[name] = f"(no log: {exc})"
        return out

    @property
    def token(self) -> str | None:
        secret = self.hub.config.status.token
        value = secret.get_secret_value().strip() if secret is not None else ""
        return value or None

    async def _recent_jobs(self) -> list[dict[str, Any]]:
        rows = await self.hub.store.db.execute_fetchall(
            "SELECT id, skill, status, origin, user, resident, job_class, created_at, started_at, finished_at, error "
            "FROM jobs ORDER BY created_at DESC LIMIT ?", (RECENT_JOBS,))
        jobs = []
        for r in rows:
            job = dict(zip(("id", "skill", "status", "origin", "user", "resident", "job_class", "created_at",
                            "started_at", "finished_at", "error"), tuple(r), strict=True))
            job["active"] = job["status"] in ACTIVE_STATES or job["id"] in self.hub.jobs.active
            if job["started_at"] and job["finished_at"]:
                job["duration_s"] = round(job["finished_at"] - job["started_at"], 2)
            jobs.append(job)
        return jobs

    async def _spend(self) -> dict[str, Any]:
        budget = self.hub.config.routing.budget
        out: dict[str, Any] = {"daily_cap_usd": budget.daily_usd, "monthly_cap_usd": budget.monthly_usd}
        chat = self.hub.chat
        if chat is not None and hasattr(chat, "budget"):
            try:
                b = await chat.budget()
                out.update(today_usd=b.spent_today_usd, month_usd=b.spent_month_usd,
                           daily_cap_usd=b.daily_cap_usd, monthly_cap_usd=b.monthly_cap_usd, source="chat")
                return out
            except Exception as exc:
                log.warning("chat budget unavailable: %s", exc)
        now = datetime.now(UTC)
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        for key, since in (("today_usd", day), ("month_usd", day.replace(day=1))):
            rows = await self.hub.store.db.execute_fetchall(
                "SELECT COALESCE(SUM(usd), 0) FROM costs WHERE at >= ?", (since.timestamp(),))
            out[key] = round(float(rows[0][0]), 4)
        out["source"] = "costs"
        return out

    async def _usage(self) -> list[dict[str, Any]]:
        """All-time tokens and spend per provider: the cost ledger is the one record of usage."""
        rows = await self.hub.store.db.execute_fetchall(
            "SELECT provider, SUM(input_tokens), SUM(output_tokens), SUM(usd) FROM costs GROUP BY provider")
        return [{"provider": r[0], "input_tokens": r[1], "output_tokens": r[2], "usd": round(float(r[3] or 0), 6)}
                for r in rows]

    def _matrix(self, base: dict[str, Any]) -> dict[str, Any] | None:
        provider = self.hub.extras.get("matrix")
        if provider is None:
            return None
        value = base.get("matrix")
        if value is None and callable(getattr(provider, "status", None)):
            try:
                value = provider.status()
            except Exception as exc:
                value = {"error": str(exc)}
        return _jsonable(value) if isinstance(value, dict) else {"status": _jsonable(value)}

    # -- backend health ----------------------------------------------------------------------------
    async def _backends(self, snap) -> list[dict[str, Any]]:
        async with self._probe_lock:
            if time.monotonic() - self._probed_at > PROBE_TTL_S:
                self._probes = await self._probe_all(snap)
                self._probed_at = time.monotonic()
        out = list(self._probes.values())
        cloud = self.hub.config.llm.cloud
        key = cloud.api_key.get_secret_value() if cloud.api_key is not None else ""
        out.append({"name": "cloud", "kind": "llm", "url": cloud.base_url or "api.anthropic.com",
                    "ok": None, "detail": (f"{cloud.model}, key configured" if key else "no API key")
                    if cloud.enabled else "disabled"})
        return out

    async def _probe_all(self, snap) -> dict[str, dict[str, Any]]:
        servers = self.hub.config.residents.servers
        known = snap.residents or {}
        results: dict[str, dict[str, Any]] = {}
        to_probe = []
        for name, r in servers.items():
            phase = (known.get(name) or {}).get("phase") or (known.get(name) or {}).get("state")
            entry = {"name": name, "kind": r.kind, "url": r.ready.url, "phase": phase, "ok": None, "detail": ""}
            results[name] = entry
            if name in known and phase == "stopped" and snap.resident != name:
                entry["detail"] = "stopped by the scheduler"
            else:
                to_probe.append((entry, r.ready.url, r.ready.status))
        if to_probe:
            async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as client:
                await asyncio.gather(*(self._probe(client, *p) for p in to_probe))
        return results

    @staticmethod
    async def _probe(client: httpx.AsyncClient, entry: dict[str, Any], url: str, expect: int) -> None:
        started = time.monotonic()
        try:
            resp = await client.get(url)
            entry["ok"] = resp.status_code == expect
            entry["detail"] = f"HTTP {resp.status_code} in {1000 * (time.monotonic() - started):.0f} ms"
        except httpx.HTTPError as exc:
            entry["ok"] = False
            entry["detail"] = type(exc).__name__
