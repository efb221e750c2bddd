"""The status page: server-side HTML (no JavaScript), refreshed by the browser every few seconds.

Server-side rendering keeps the page usable in any browser, over SSH tunnels and in screenshots;
every value is escaped. Action buttons appear only when a status token is configured.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from html import escape
from typing import Any

REFRESH_S = 5

CSS = """
:root { color-scheme: light dark; --bg:#0f1419; --card:#182029; --fg:#e6edf3; --dim:#8b98a5; --ok:#3fb950;
        --bad:#f85149; --warn:#d29922; --accent:#58a6ff; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg);
       color:var(--fg); }
header { padding:14px 24px; border-bottom:1px solid #2d3640; display:flex; gap:24px; align-items:baseline; }
header h1 { font-size:20px; margin:0; } header span { color:var(--dim); }
main { display:grid; grid-template-columns:repeat(auto-fit, minmax(380px, 1fr)); gap:16px; padding:16px 24px; }
section { background:var(--card); border-radius:8px; padding:12px 16px; overflow:auto; }
section.wide { grid-column:1 / -1; } section.span2 { grid-column:span 2; }
@media (max-width: 820px) { section.span2 { grid-column:auto; } }
h2 { font-size:13px; text-transform:uppercase; letter-spacing:.06em; color:var(--dim); margin:0 0 8px; }
table { width:100%; border-collapse:collapse; } th, td { text-align:left; padding:3px 10px 3px 0; white-space:nowrap; }
th { color:var(--dim); font-weight:500; } td.num { text-align:right; font-variant-numeric:tabular-nums; }
.big { font-size:24px; font-weight:600; } .dim { color:var(--dim); }
.ok { color:var(--ok); } .bad { color:var(--bad); } .warn { color:var(--warn); }
.pill { display:inline-block; padding:0 8px; border-radius:10px; background:#2d3640; }
.bar { height:8px; background:#2d3640; border-radius:4px; overflow:hidden; margin:4px 0 10px; }
.bar > div { height:100%; background:var(--accent); }
a { color:var(--accent); } form { display:inline; } button { font:inherit; cursor:pointer; }
input[type=password] { width:9em; }
pre.log { max-height:16em; overflow:auto; background:#0b0f14; padding:6px 8px; border-radius:4px; font-size:12px; }
h3 { font-size:13px; margin:8px 0 4px; }
"""

STATE_CLASS = {"down": "bad", "ready": "ok", "busy": "ok", "idle": "dim", "starting": "warn", "stopping": "warn",
               "failed": "bad", "succeeded": "ok", "running": "warn", "queued": "dim", "cancelled": "dim",
               "rejected": "bad", "refused": "bad", "denied": "bad"}


def _t(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S") if ts else "-"


def _secs(s: float | None) -> str:
    if s is None:
        return "-"
    s = float(s)
    if s < 90:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _state(value: Any) -> str:
    text = "-" if value is None else str(value)
    return f'<span class="pill {STATE_CLASS.get(text, "")}">{escape(text)}</span>'


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p class="dim">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _resident(s: dict[str, Any]) -> str:
    gpu = s["gpu"]
    busy = ", ".join(escape(str(b)) for b in gpu.get("busy_with") or []) or "nothing"
    resident = gpu.get("resident") or "none"
    rows = []
    for name, info in (s.get("residents") or {}).items():
        mark = "★ " if info.get("default") else ""
        phase = info.get("phase") or ("resident" if name == gpu.get("resident") else "-")
        eta = info.get("eta_s")
        pin = info.get("pinned") or {}
        held = f'pinned by {escape(str(pin.get("by")))}' + (f' · {_secs(pin.get("left_s"))} left'
                                                           if pin.get("left_s") is not None else "") if pin else ""
        row = [escape(mark + name), escape(str(info.get("kind", ""))),
               f'<span class="num">{info.get("memory_gb", "")} GB</span>', _state(phase),
               _secs(eta) if eta is not None else "-", held]
        if s.get("actions_enabled"):
            row.append(_gpu_forms(name))
        rows.append(row)
    return (f'<section id="resident"><h2>Resident model</h2><div class="big">{escape(resident)} '
            f'{_state(gpu.get("state"))}</div><p class="dim">busy with: {busy}</p>'
            + (f'<p class="warn" id="gpu-answer">{escape(s["gpu_answer"])}</p>' if s.get("gpu_answer") else "")
            + _table(["resident", "kind", "memory", "phase", "ETA", "pin"] + ([""] if s.get("actions_enabled") else []),
                     rows, "no residents configured")
            + "</section>")


def _nodes(s: dict[str, Any]) -> str:
    """Several nodes: each one's engine, pool, whether it answers, and what is loaded on it."""
    nodes = s["gpu"].get("nodes") or {}
    if not nodes:
        return ""
    rows = []
    for name, n in nodes.items():
        loaded = ", ".join(f"{escape(r)} ({escape(str(p))})" for r, p in (n.get("residents") or {}).items()
                           if p != "stopped") or "nothing"
        rows.append([escape(name), escape(str(n.get("endpoint") or "")), escape(str(n.get("host") or "-")),
                     f'<span class="num">{n.get("memory_gb", "")} GB − {n.get("reserve_gb", "")} GB</span>',
                     _state(n.get("state")), loaded, str(n.get("queue", 0)), escape(str(n.get("error") or ""))])
    return ('<section id="nodes"><h2>Nodes</h2>'
            + _table(["node", "engine", "host", "pool", "state", "loaded", "queue", "error"], rows, "no nodes")
            + "</section>")


def _gpu_forms(name: str) -> str:
    """Token-gated buttons: each posts a request to the scheduler, which answers on the page."""
    n = escape(name)
    tok = '<input type="password" name="token" placeholder="token" required>'
    return (f'<form method="post" action="/api/gpu/load"><input type="hidden" name="name" value="{n}">{tok} '
            '<button type="submit">load</button></form> '
            f'<form method="post" action="/api/gpu/unload"><input type="hidden" name="name" value="{n}">{tok} '
            '<button type="submit">unload</button></form> '
            f'<form method="post" action="/api/gpu/pin"><input type="hidden" name="name" value="{n}">{tok} '
            '<input name="for" value="30m" size="4"> <button type="submit">pin</button></form>')


def _timeline(s: dict[str, Any]) -> str:
    from bridges.status.timeline import render as draw

    points = s.get("timeline")
    if not points:
        return ""
    names = list((s.get("residents") or {}).keys())
    if s["gpu"].get("nodes"):  # several nodes: one lane per resident and node (`name@node`)
        names = sorted({str(p[2]) for p in points if p[2]})
    return ('<section id="timeline" class="wide"><h2>Residency timeline (last 6 h)</h2>'
            + draw(points, names, s.get("generated_at") or time.time())
            + '<p class="dim">bands: loaded (colour), starting (amber), stopping (brown); ticks: jobs; '
              'bottom: queue depth</p></section>')


def _logs(s: dict[str, Any]) -> str:
    """The last lines of each resident's server output (the page reloads every few seconds: it follows)."""
    logs = s.get("gpu_logs") or {}
    if not logs:
        return ""
    parts = [f'<h3>{escape(name)} <a href="/api/gpu/logs/{escape(name)}?lines=500">more</a></h3>'
             f'<pre class="log">{escape(text) or "(no output yet)"}</pre>' for name, text in logs.items()]
    return '<section id="logs" class="wide"><h2>Resident logs</h2>' + "".join(parts) + "</section>"


def _queue(s: dict[str, Any]) -> str:
    rows = [[str(q.get("position", i + 1)), f'<code>{escape(str(q.get("job_id", "")))}</code>',
             escape(q.get("label") or ""), escape(str(q.get("resident", ""))), escape(str(q.get("job_class", ""))),
             _secs(q.get("waited_s")), _secs(q.get("eta_s"))]
            for i, q in enumerate(s["gpu"].get("queue") or [])]
    return ('<section id="queue" class="span2"><h2>GPU queue</h2>'
            + _table(["#", "job", "what", "needs", "class", "waited", "ETA"], rows, "nothing is waiting")
            + "</section>")


def _jobs(s: dict[str, Any]) -> str:
    actions = s.get("actions_enabled")
    rows = []
    for j in s.get("recent_jobs") or []:
        row = [_t(j.get("created_at")), escape(j.get("skill") or ""), _state(j.get("status")),
               escape(j.get("origin") or ""), escape(j.get("resident") or "-"), _secs(j.get("duration_s")),
               f'<span class="bad">{escape((j.get("error") or "")[:80])}</span>']
        if actions:
            row.append(_cancel_form(j["id"]) if j.get("active") else "")
        rows.append(row)
    headers = ["created", "skill", "status", "origin", "resident", "took", "error"] + ([""] if actions else [])
    counts = ", ".join(f"{escape(k)} {v}" for k, v in sorted((s.get("jobs_by_status") or {}).items()))
    return (f'<section id="jobs" class="wide"><h2>Recent jobs</h2><p class="dim">all time: {counts or "none"}</p>'
            + _table(headers, rows, "no jobs yet") + "</section>")


def _cancel_form(job_id: str) -> str:
    jid = escape(job_id)
    return (f'<form method="post" action="/api/jobs/{jid}/cancel">'
            '<input type="password" name="token" placeholder="token" required> '
            '<button type="submit">cancel</button></form>')


def _swaps(s: dict[str, Any]) -> str:
    ok, failed = '<span class="ok">ok</span>', '<span class="bad">failed</span>'
    rows = [[_t(w.get("at", w.get("started"))), escape(str(w.get("resident", ""))), escape(str(w.get("phase", ""))),
             _secs(w.get("seconds")), ok if w.get("ok", True) else failed,
             escape(str(w.get("error") or w.get("reason") or ""))]
            for w in s["gpu"].get("swaps") or []]
    return ('<section id="swaps" class="wide"><h2>Swap history</h2>'
            + _table(["when", "resident", "phase", "took", "", "error"], rows, "no swaps yet") + "</section>")


def _bar(spent: float, cap: float) -> str:
    pct = 0 if not cap else min(100.0, 100.0 * spent / cap)
    return f'<div class="bar"><div style="width:{pct:.1f}%"></div></div>'


def _spend(s: dict[str, Any]) -> str:
    sp = s.get("spend") or {}
    today, month = float(sp.get("today_usd") or 0), float(sp.get("month_usd") or 0)
    dcap, mcap = float(sp.get("daily_cap_usd") or 0), float(sp.get("monthly_cap_usd") or 0)
    return (f'<section id="spend"><h2>Cloud spend</h2>'
            f'<div>today <b>${today:.2f}</b> <span class="dim">of ${dcap:.2f}</span></div>{_bar(today, dcap)}'
            f'<div>this month <b>${month:.2f}</b> <span class="dim">of ${mcap:.2f}</span></div>{_bar(month, mcap)}'
            + _clients(s) + "</section>")


def _clients(s: dict[str, Any]) -> str:
    """Spend per client this month: who (a Matrix user, an MCP or API token) asked which models."""
    rows = [[escape(c["client"]), escape(c.get("origin") or ""), str(c["calls"]),
             f'{c["input_tokens"]:,} / {c["output_tokens"]:,}', f'${c["today_usd"]:.2f}', f'${c["month_usd"]:.2f}']
            for c in s.get("clients") or []]
    return ('<h3 id="clients">Per client, this month</h3>'
            + _table(["client", "via", "calls", "tokens in / out", "today", "month"], rows, "no calls yet"))


def _backends(s: dict[str, Any]) -> str:
    rows = []
    for b in s.get("backends") or []:
        ok = b.get("ok")
        mark = ('<span class="ok">● up</span>' if ok else '<span class="bad">● down</span>' if ok is False
                else '<span class="dim">○</span>')
        name = f'<span title="{escape(b.get("url") or "")}">{escape(b.get("name", ""))}</span>'
        rows.append([name, escape(b.get("kind", "")), mark, escape(b.get("detail") or "")])
    return ('<section id="backends"><h2>Backend health</h2>'
            + _table(["backend", "kind", "", "detail"], rows, "no backends") + "</section>")


def _matrix(s: dict[str, Any]) -> str:
    m = s.get("matrix")
    if m is None:
        body = '<p class="dim">the Matrix bridge is not running</p>'
    else:
        rows = [[escape(str(k)), escape(str(v))] for k, v in m.items()]
        body = _table(["", ""], rows, "no figures")
    return f'<section id="matrix"><h2>Matrix decryption health</h2>{body}</section>'


def _storage(s: dict[str, Any]) -> str:
    """The storage health check: a full disk or a locked DB is shown here, not only in a log line."""
    st = s.get("storage") or {}
    state = st.get("state", "ok")
    mark = '<span class="ok">● ok</span>' if state == "ok" else f'<span class="bad">● {escape(state)}</span>'
    rows = [["SQLite writes", mark], ["failed writes since start", escape(str(st.get("errors_total", 0)))]]
    if st.get("last_error"):
        rows.append(["last error", f'{escape(str(st.get("where") or ""))}: {escape(st["last_error"])} '
                                   f'<span class="dim">{_t(st.get("last_error_at"))}</span>'])
    schedules = s.get("schedules") or {}
    if schedules:
        firing = "firing here" if schedules.get("firing_here") else "not firing here"
        rows.append(["schedules", escape(firing) + (f' <span class="bad">{escape(schedules["error"])}</span>'
                                                    if schedules.get("error") else "")])
    return '<section id="storage"><h2>Storage</h2>' + _table(["", ""], rows, "") + "</section>"


def render(s: dict[str, Any]) -> str:
    mode = "actions enabled (token)" if s.get("actions_enabled") else "read-only"
    generated = datetime.fromtimestamp(s.get("generated_at") or time.time(), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    sections = "".join((_resident(s), _nodes(s), _queue(s), _spend(s), _backends(s), _storage(s), _matrix(s), _swaps(s),
                        _jobs(s), _timeline(s), _logs(s)))
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="refresh" content="{REFRESH_S}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>sovhub status</title><style>{CSS}</style></head><body>"
        f'<header><h1>sovhub</h1><span>up {_secs(s.get("uptime_s"))}</span>'
        f'<span>{s.get("skills", 0)} skills</span><span>{escape(mode)}</span>'
        f'<span>{escape(generated)}</span><span><a href="/api/status">JSON</a> · <a href="/metrics">metrics</a>'
        "</span></header>"
        f"<main>{sections}</main></body></html>"
    )
