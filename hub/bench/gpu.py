"""`sovhub bench gpu`: the resident-model policies side by side on one simulated trace.

Every policy runs the same seeded trace under the virtual clock (`hub.scheduler.simulator`), so
the figures compare decisions, not machines.
"""

from __future__ import annotations

from hub.errors import HubError
from hub.scheduler.baselines import POLICIES
from hub.scheduler.simulator import simulate
from hub.scheduler.traces import TRACES, make

DEFAULT_POLICIES = ("sovhub", "llama_swap", "llama_swap_fairshare", "fifo", "ollama")


def run(trace: str = "mixed", seed: int = 1, policies: str = "", seeds: int = 1) -> dict:
    """Simulate `trace` under each policy (comma-separated names; default all); the JSON shape of
    the scheduler issue plus the targets. `seeds` > 1 adds the sovhub/llama_swap swap ratio and the
    bound check for that many seeds from `seed` on (how robust the figures are)."""
    if trace not in TRACES:
        raise HubError(f"unknown trace {trace!r} (known: {', '.join(TRACES)})")
    names = [n.strip() for n in policies.split(",") if n.strip()] or list(DEFAULT_POLICIES)
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise HubError(f"unknown policy {', '.join(unknown)} (known: {', '.join(POLICIES)})")
    tr = make(trace, seed)
    results = {name: simulate(tr, name) for name in names}
    out: dict = {"trace": trace, "seed": seed, "jobs": sum(len(s.steps) for s in tr.sessions),
                 "horizon_s": tr.horizon_s, "policies": results}
    mine, ref = results.get("sovhub"), results.get("llama_swap")
    if mine is not None:
        out["targets"] = {
            "swaps_vs_llama_swap": round(mine["swaps"] / ref["swaps"], 3) if ref and ref["swaps"] else None,
            "max_wait_within_bound": mine["wait_within_bound"],
            "gpu_idle_while_queued_s": mine["gpu_idle_while_queued_s"],
        }
    if seeds > 1:
        rows = []
        for k in range(seed, seed + seeds):
            t = make(trace, k)
            a, b = simulate(t, "sovhub"), simulate(t, "llama_swap")
            rows.append({"seed": k, "sovhub_swaps": a["swaps"], "llama_swap_swaps": b["swaps"],
                         "ratio": round(a["swaps"] / b["swaps"], 3) if b["swaps"] else None,
                         "within_bound": a["wait_within_bound"], "idle_s": a["gpu_idle_while_queued_s"]})
        out["by_seed"] = rows
    return out
