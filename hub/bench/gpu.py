"""`sovhub bench gpu`: the resident-model policies side by side on simulated traces.

Every policy runs the same seeded trace under the virtual clock (`hub.bench.gpusim.simulator`), so
the figures compare decisions, not machines. A policy that stops making progress is reported as
`stalled` (with the state at that moment) and the command exits non-zero; it never hangs.
"""

from __future__ import annotations

from statistics import median

from hub.bench.gpusim.baselines import POLICIES
from hub.bench.gpusim.bound import lower_bound_loads
from hub.bench.gpusim.simulator import simulate
from hub.bench.gpusim.traces import TRACES, make
from hub.errors import HubError
from hub.gpu.model import JOB_CLASSES

DEFAULT_POLICIES = tuple(POLICIES)


def _spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": median(values), "max": max(values)}


def _summary(runs: list[dict], bounds: list[int | None]) -> dict:
    """min/median/max over seeds of the figures that matter, plus every stall."""
    ratios = [r["swaps"] / b for r, b in zip(runs, bounds, strict=True) if b]
    return {
        "swaps": _spread([r["swaps"] for r in runs]),
        "swaps_over_lower_bound": {k: round(v, 2) for k, v in _spread(ratios).items()} if ratios else None,
        "wait_max_s": {c: _spread([r["wait_max_s"][c] for r in runs]) for c in JOB_CLASSES},
        "wait_p95_s": {c: _spread([r["wait_p95_s"][c] for r in runs]) for c in JOB_CLASSES},
        "bound_violations": sum(sum(r["bound_violations"].values()) for r in runs),
        "seeds_with_violations": sum(1 for r in runs if not r["wait_within_bound"]),
        "violations_unavoidable": sum(r["violations_unavoidable"] for r in runs),
        "violations_avoidable": sum(r["violations_avoidable"] for r in runs),
        "yields": sum(r.get("yields", 0) for r in runs),
        "rejected_429": sum(r.get("rejected_429", 0) for r in runs),
        "idle_while_queued_s": _spread([r["idle_while_queued_s"] for r in runs]),
        "swap_s": _spread([r["swap_s"] for r in runs]),
        "jobs_left": sum(r["jobs_left"] for r in runs),
        "stalls": [{"seed": r["seed"], **r["stalled"]} for r in runs if r["stalled"]],
    }


def _preloading(traces: list, plain: list[dict]) -> dict:
    """Scheduled jobs' waits under sovhub without and with schedule-aware preloading (the policy
    sees the scheduled arrivals ahead), plus what preloading costs: swaps and interactive bounds."""
    pre = [simulate(tr, "sovhub", preload=True) for tr in traces]

    def figures(runs: list[dict]) -> dict:
        return {"scheduled_wait_mean_s": _spread([r["wait_mean_s"].get("scheduled", 0.0) for r in runs]),
                "scheduled_wait_p50_s": _spread([r["wait_p50_s"].get("scheduled", 0.0) for r in runs]),
                "scheduled_wait_max_s": _spread([r["wait_max_s"].get("scheduled", 0.0) for r in runs]),
                "interactive_violations": sum(r["bound_violations"].get("interactive", 0) for r in runs),
                "swaps": _spread([r["swaps"] for r in runs]),
                "stalls": sum(1 for r in runs if r["stalled"])}

    return {"without": figures(plain), "with": figures(pre)}


def run(trace: str = "mixed", seed: int = 1, policies: str = "", seeds: int = 1, nodes: int = 1) -> dict:
    """Simulate `trace` under each policy (comma-separated names; default all). With `seeds` > 1,
    every policy runs on seeds `seed`..`seed+seeds-1` and the result holds min/median/max per
    policy (`summary`) and the per-seed swap counts (`by_seed`). `lower_bound_swaps` is the fewest
    loads any schedule that keeps every bound needs (`hub.bench.gpusim.bound`). `ok` is false when any
    policy stalled. With `nodes` > 1, each policy runs on one box and on `nodes` boxes (per-node
    pools, `hub.gpu.placement`) on the same traces."""
    if trace not in TRACES:
        raise HubError(f"unknown trace {trace!r} (known: {', '.join(TRACES)})")
    if seeds < 1:
        raise HubError(f"--seeds must be at least 1, got {seeds}")
    names = [n.strip() for n in policies.split(",") if n.strip()] or list(DEFAULT_POLICIES)
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise HubError(f"unknown policy {', '.join(unknown)} (known: {', '.join(POLICIES)})")
    if nodes < 1:
        raise HubError(f"--nodes must be at least 1, got {nodes}")
    if nodes > 1:  # one box against several on the same traces (hub.bench.gpusim.multinode)
        from hub.bench.gpusim.multinode import compare_nodes

        return compare_nodes(trace, seed, seeds, nodes, names)
    per_seed: dict[str, list[dict]] = {n: [] for n in names}
    traces = [make(trace, k) for k in range(seed, seed + seeds)]
    for tr in traces:
        for name in names:
            per_seed[name].append({"seed": tr.seed, **simulate(tr, name)})
    bounds = [lower_bound_loads(tr) for tr in traces]
    first = traces[0]
    out: dict = {"trace": trace, "seed": seed, "seeds": seeds,
                 "jobs": sum(len(s.steps) for s in first.sessions), "horizon_s": first.horizon_s}
    if seeds == 1:
        out["lower_bound_swaps"] = bounds[0]
        out["policies"] = {n: per_seed[n][0] for n in names}
    else:
        known = [b for b in bounds if b is not None]
        out["lower_bound_swaps"] = _spread(known) if known else None
        out["summary"] = {n: _summary(per_seed[n], bounds) for n in names}
        out["by_seed"] = [{"seed": tr.seed, "lower_bound": bounds[i], **{n: per_seed[n][i]["swaps"] for n in names}}
                          for i, tr in enumerate(traces)]
    if "sovhub" in names:
        out["preloading"] = _preloading(traces, per_seed["sovhub"])
    out["stalls"] = sum(1 for n in names for r in per_seed[n] if r["stalled"])
    out["ok"] = out["stalls"] == 0
    return out
