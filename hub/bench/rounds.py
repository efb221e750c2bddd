"""What every hub bench reports: several rounds, the median round, the spread, CPU next to wall time,
the load on the machine, and whether the goals held (a missed goal makes `sovhub bench` exit 1).

Goals are judged on the median round, so one lucky round cannot pass a bench and one unlucky one
cannot fail it; the spread (min..max of each figure over the rounds) shows how far to trust it.
"""

from __future__ import annotations

import os
import time
from typing import Any


def load() -> dict[str, float]:
    one, five, _ = os.getloadavg()
    return {"loadavg_1m": round(one, 2), "loadavg_5m": round(five, 2), "cpus": os.cpu_count() or 1}


class Clock:
    """Wall and process-CPU time of a whole bench (other load inflates the first, not the second)."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def figures(self) -> dict[str, float]:
        return {"wall_s": round(time.perf_counter() - self.wall, 2), "cpu_s": round(time.process_time() - self.cpu, 2)}


def summarise(rounds: list[dict[str, Any]], *, rank: str, goals: dict[str, tuple[str, float]]) -> dict[str, Any]:
    """The median round by `rank`, each numeric figure's spread, and the goal verdicts.

    `goals` maps a figure to ("max" | "min", limit): the median round's figure must be at most /
    at least the limit. `ok` is False, with `missed` naming each figure, when any goal is missed."""
    ordered = sorted(rounds, key=lambda r: r[rank])
    median = ordered[(len(ordered) - 1) // 2]
    spread = {k: [round(min(r[k] for r in rounds), 3), round(max(r[k] for r in rounds), 3)]
              for k, v in median.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    missed = []
    for key, (kind, limit) in goals.items():
        value = median[key]
        if (kind == "max" and value > limit) or (kind == "min" and value < limit):
            missed.append(f"{key} {value} {'>' if kind == 'max' else '<'} {limit}")
    return {**median, "rounds": len(rounds), "median_round_by": rank, "spread": spread,
            "goals": {k: f"{'<=' if kind == 'max' else '>='} {limit}" for k, (kind, limit) in goals.items()},
            "missed": missed, "ok": not missed}
