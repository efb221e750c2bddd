"""`sovhub bench all`: the quick benches together, one JSON summary, exit 1 when any goal is missed.

Runs `turn`, `mcp`, `startup`, `gpu` and `api` one after the other, each in its
usual form but sized to finish in about a minute or two on a busy 2-core machine. Each bench's own
result is kept whole under its name; `ok` is the conjunction, `missed` lists every missed goal.
A bench that crashes is reported as missed (with its error), never skipped silently.
"""

from __future__ import annotations

import importlib
import traceback
from typing import Any

from hub.bench.rounds import Clock, load

QUICK: dict[str, tuple[str, dict[str, Any]]] = {
    "turn": ("hub.bench.turn", {"runs": 150, "rounds": 3}),
    "mcp": ("bridges.mcp.bench", {"calls": 300, "rounds": 3}),
    "startup": ("hub.bench.startup", {"rounds": 3}),
    "gpu": ("hub.bench.gpu", {}),
    "api": ("bridges.api.bench", {"turns": 30, "rounds": 3, "tokens": 32, "warmup": 3}),
}


def _verdict(result: dict[str, Any]) -> tuple[bool, list[str]]:
    if "ok" in result:
        return bool(result["ok"]), list(result.get("missed") or ([] if result["ok"] else ["ok is false"]))
    if "meets_goal" in result:
        return bool(result["meets_goal"]), [] if result["meets_goal"] else [f"goal {result.get('goal')} missed"]
    return True, []


def run(only: str = "", scale: float = 1.0) -> dict[str, Any]:
    """`--only turn,mcp` runs a subset; `--scale 0.2` shrinks every bench's run count (a smoke test)."""
    clock = Clock()
    names = [n.strip() for n in only.split(",") if n.strip()] or list(QUICK)
    out: dict[str, Any] = {"bench": "all", **load()}
    missed: list[str] = []
    for name in names:
        if name not in QUICK:
            raise ValueError(f"unknown bench {name!r} (known: {', '.join(QUICK)})")
        module_name, options = QUICK[name]
        module = importlib.import_module(module_name)
        sized = {k: max(1, int(v * scale)) if isinstance(v, int) and k not in ("rounds",) else v
                 for k, v in options.items()}
        try:
            result = module.run(**sized)
        except Exception as exc:  # a crashed bench is a failed goal, with why
            out[name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(limit=3)}
            missed.append(f"{name}: crashed ({type(exc).__name__})")
            continue
        out[name] = result
        ok, why = _verdict(result)
        if not ok:
            missed.extend(f"{name}: {w}" for w in why)
    out.update({"missed": missed, "ok": not missed, "loadavg_1m_after": load()["loadavg_1m"], **clock.figures()})
    return out
