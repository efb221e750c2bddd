"""`sovhub status` and `sovhub jobs`: read the hub's SQLite state (WAL allows a running hub)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from rich.table import Table

from hub.chat.budget import spend_by_client
from hub.cli.common import console
from hub.config import HubConfig
from hub.store import Store


def _ts(value: float | None) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


async def spend(store: Store, now: float | None = None) -> dict[str, float]:
    now = now or time.time()
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    out = {}
    for key, since in (("today_usd", day.timestamp()), ("month_usd", month.timestamp())):
        rows = await store.db.execute_fetchall("SELECT COALESCE(SUM(usd), 0) FROM costs WHERE at >= ?", (since,))
        out[key] = round(rows[0][0], 4)
    return out


async def collect(config: HubConfig) -> dict:
    store = await Store.open(config.storage.db_path)
    try:
        counts = {r[0]: r[1] for r in await store.db.execute_fetchall(
            "SELECT status, COUNT(*) FROM jobs GROUP BY status")}
        recent = await store.db.execute_fetchall(
            "SELECT id, skill, status, origin, created_at, error FROM jobs ORDER BY created_at DESC LIMIT 10")
        gpu = await store.kv_get("gpu.snapshot", {})
        schedules = await store.db.execute_fetchall(
            "SELECT name, skill, trigger, timezone, enabled, next_run_at, last_status FROM schedules ORDER BY name")
        return {
            "schedules": [dict(r) for r in schedules],
            "db": str(config.storage.db_path),
            "jobs": counts,
            "recent": [dict(r) for r in recent],
            "gpu": gpu,
            "spend": {**await spend(store), "daily_cap_usd": config.routing.budget.daily_usd,
                      "monthly_cap_usd": config.routing.budget.monthly_usd},
            "clients": await spend_by_client(store.db),
        }
    finally:
        await store.close()


async def show_status(config: HubConfig, as_json: bool) -> None:
    data = await collect(config)
    if as_json:
        print(json.dumps(data, default=str))
        return
    gpu = data["gpu"] or {}
    console.print(f"[bold]resident[/bold]: {gpu.get('resident') or 'none'} ({gpu.get('state', 'unknown')})")
    for name, n in (gpu.get("nodes") or {}).items():
        loaded = ", ".join(f"{r} ({p})" for r, p in (n.get("residents") or {}).items() if p != "stopped") or "nothing"
        console.print(f"[bold]node[/bold] {name}: {n.get('state')} at {n.get('endpoint')}"
                      f"{' (' + n['host'] + ')' if n.get('host') else ''}, pool {n.get('memory_gb')} GB, "
                      f"loaded: {loaded}, queue {n.get('queue', 0)}"
                      + (f" - {n['error']}" if n.get("error") else ""), highlight=False)
    queue = gpu.get("queue") or []
    console.print(f"[bold]queue[/bold]: {len(queue)} job(s)")
    for q in queue:
        eta = q.get("eta_s")
        console.print(f"  {q.get('job_id')} {q.get('label') or ''} → {q.get('resident')} "
                      f"({q.get('job_class')}, ETA {eta:.0f} s)" if eta is not None else
                      f"  {q.get('job_id')} → {q.get('resident')}")
    swaps = gpu.get("swaps") or []
    if swaps:
        console.print("[bold]swaps[/bold]:")
        for s in swaps[-5:]:
            console.print(f"  {s}")
    spend_ = data["spend"]
    console.print(f"[bold]spend[/bold]: today ${spend_['today_usd']:.2f} / ${spend_['daily_cap_usd']:.2f}, "
                  f"month ${spend_['month_usd']:.2f} / ${spend_['monthly_cap_usd']:.2f}")
    if data["clients"]:
        table = Table("client", "via", "calls", "tokens in / out", "today", "month", title="spend per client (month)")
        for c in data["clients"]:
            table.add_row(c["client"], c["origin"] or "-", str(c["calls"]),
                          f"{c['input_tokens']:,} / {c['output_tokens']:,}", f"${c['today_usd']:.2f}",
                          f"${c['month_usd']:.2f}")
        console.print(table)
    for s in data["schedules"]:
        state = "" if s["enabled"] else " (paused)"
        try:
            trigger = json.loads(s["trigger"])
            when = " ".join(str(v) for k, v in trigger.items() if k != "kind")
        except (TypeError, ValueError):
            when = s["trigger"]
        console.print(f"[bold]schedule[/bold] {s['name']}{state}: {s['skill']} at {when} ({s['timezone']}), "
                      f"next {_ts(s['next_run_at'])}, last {s['last_status'] or '-'}", highlight=False)
    console.print("[bold]jobs[/bold]: " + (", ".join(f"{k} {v}" for k, v in sorted(data["jobs"].items()))
                                           or "none"))


async def show_jobs(config: HubConfig, limit: int, state: str | None, job_id: str | None) -> None:
    store = await Store.open(config.storage.db_path)
    try:
        if job_id:
            rows = await store.db.execute_fetchall("SELECT * FROM jobs WHERE id = ?", (job_id,))
            if not rows:
                from hub.errors import UnknownJob

                raise UnknownJob(f"no job {job_id!r}")
            console.print_json(json.dumps(dict(rows[0]), default=str))
            events = await store.db.execute_fetchall(
                "SELECT at, type, data FROM job_events WHERE job_id = ? ORDER BY id", (job_id,))
            for e in events:
                console.print(f"  {_ts(e[0])} {e[1]} {e[2]}", highlight=False)
            return
        sql = "SELECT id, skill, status, origin, user, created_at, finished_at, error FROM jobs"
        args: tuple = ()
        if state:
            sql += " WHERE status = ?"
            args = (state,)
        rows = await store.db.execute_fetchall(sql + " ORDER BY created_at DESC LIMIT ?", (*args, limit))
        table = Table("job", "skill", "status", "origin", "user", "created", "error")
        for column in table.columns[:3]:
            column.no_wrap, column.min_width = True, 8
        table.columns[0].min_width, table.columns[1].min_width = 16, 14
        for r in rows:
            table.add_row(r["id"], r["skill"], r["status"], r["origin"], r["user"] or "-", _ts(r["created_at"]),
                          (r["error"] or "")[:60])
        console.print(table)
    finally:
        await store.close()
