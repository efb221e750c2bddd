"""The residency timeline as inline SVG (no JavaScript): which resident held the GPU when, its loads
and unloads with their durations, the queue depth, and jobs as marks.

Pure: `bands(points, now, since)` turns the scheduler's timeline points into intervals and
`render(points, names, now, hours)` draws them, so both are tested without a browser.
"""

from __future__ import annotations

from html import escape
from typing import Any

COLORS = {"ready": "#3fb950", "starting": "#d29922", "stopping": "#8b5a2b"}
PALETTE = ("#58a6ff", "#bc8cff", "#ff7b72", "#3fb950", "#d29922")
WIDTH, ROW, LEFT, TOP = 900, 26, 90, 8


def bands(points: list, now: float, since: float) -> list[dict[str, Any]]:
    """`[t, "phase", resident, phase]` points -> intervals {resident, phase, start, end} clipped to
    [since, now]; a resident's last phase runs until now."""
    open_: dict[str, tuple[float, str]] = {}
    out: list[dict[str, Any]] = []
    for t, kind, name, value in sorted(points, key=lambda p: p[0]):
        if kind != "phase":
            continue
        if name in open_:
            start, phase = open_.pop(name)
            if phase != "stopped" and t > since:
                out.append({"resident": name, "phase": phase, "start": max(start, since), "end": t})
        open_[name] = (t, value)
    for name, (start, phase) in open_.items():
        if phase != "stopped":
            out.append({"resident": name, "phase": phase, "start": max(start, since), "end": now})
    return out


def render(points: list, names: list[str], now: float, hours: float = 6.0) -> str:
    since = now - hours * 3600
    first = min((p[0] for p in points), default=now)
    since = max(since, first - 60)  # a young hub: the picture starts shortly before its first point
    span = max(now - since, 1.0)

    def x(t: float) -> float:
        return LEFT + (WIDTH - LEFT - 10) * (t - since) / span

    rows = {n: i for i, n in enumerate(names)}
    height = TOP + ROW * (len(names) + 1) + 24
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="timeline-svg" width="{WIDTH}" height="{height}" '
             f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="residency timeline">',
             f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#0b0f14"/>']
    for n, i in rows.items():
        y = TOP + i * ROW
        parts.append(f'<text x="4" y="{y + 17}" fill="#8b98a5" font-size="12">{escape(n)}</text>')
        parts.append(f'<line x1="{LEFT}" y1="{y + ROW - 2}" x2="{WIDTH - 10}" y2="{y + ROW - 2}" stroke="#2d3640"/>')
    for b in bands(points, now, since):
        if b["resident"] not in rows:
            continue
        i = rows[b["resident"]]
        y = TOP + i * ROW + 3
        color = PALETTE[i % len(PALETTE)] if b["phase"] == "ready" else COLORS.get(b["phase"], "#8b98a5")
        w = max(2.0, x(b["end"]) - x(b["start"]))
        title = f'{b["resident"]} {b["phase"]} {b["end"] - b["start"]:.0f} s'
        parts.append(f'<rect class="band" data-resident="{escape(b["resident"])}" data-phase="{b["phase"]}" '
                     f'x="{x(b["start"]):.1f}" y="{y}" width="{w:.1f}" height="{ROW - 8}" fill="{color}">'
                     f'<title>{escape(title)}</title></rect>')
    for t, kind, name, value in points:
        if kind == "job" and name in rows and t >= since:
            y = TOP + rows[name] * ROW
            parts.append(f'<line class="job" x1="{x(t):.1f}" y1="{y + 1}" x2="{x(t):.1f}" y2="{y + ROW - 3}" '
                         f'stroke="#e6edf3" stroke-width="1.5"><title>{escape(str(value))}</title></line>')
    # queue depth as a step line in the bottom row
    qy = TOP + len(names) * ROW
    depth = [(t, int(v)) for t, kind, _, v in points if kind == "queue"]
    top = max((d for _, d in depth), default=0) or 1
    path, last = [], 0
    for t, d in depth:
        if t < since:
            last = d
            continue
        path.append(f"{x(t):.1f},{qy + ROW - 4 - (ROW - 8) * last / top:.1f}")
        path.append(f"{x(t):.1f},{qy + ROW - 4 - (ROW - 8) * d / top:.1f}")
        last = d
    path.append(f"{x(now):.1f},{qy + ROW - 4 - (ROW - 8) * last / top:.1f}")
    parts.append(f'<text x="4" y="{qy + 17}" fill="#8b98a5" font-size="12">queue ≤{top}</text>')
    parts.append(f'<polyline class="queue" fill="none" stroke="#d29922" points="{" ".join(path)}"/>')
    ly = height - 6
    parts.append(f'<text x="{LEFT}" y="{ly}" fill="#8b98a5" font-size="11">{(now - since) / 60:.0f} min ago</text>')
    parts.append(f'<text x="{WIDTH - 40}" y="{ly}" fill="#8b98a5" font-size="11">now</text>')
    parts.append("</svg>")
    return "".join(parts)
