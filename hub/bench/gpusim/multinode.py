"""The simulator over several nodes: one pool per node, each decided by the single-pool policy.

A lease is placed when it is submitted (`hub.gpu.placement.place`, as `hub.gpu.nodes` does in the
hub), the default resident's home is recomputed before every decision, and every pool's policy is
asked what to do until none changes its mind. The same reducers, the same policy, the same traces
as `simulator.py`: `sovhub bench gpu --nodes 2` compares one box with two on identical arrivals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from hub.bench.gpusim.baselines import POLICIES, Policy
from hub.bench.gpusim.simulator import PoolSimulation
from hub.bench.gpusim.traces import Trace
from hub.gpu import reducers as R
from hub.gpu.model import (
    JOB_CLASSES,
    Phase,
    PolicyParams,
    SchedState,
)
from hub.gpu.placement import default_home, moves, place, with_default

Check = Callable[[float, Mapping[str, SchedState], Mapping[str, str]], None]


class MultiSimulation(PoolSimulation):
    """`trace` on `nodes` identical pools (unless `allowed` restricts a resident to some of them)."""

    unsettled = "the policies do not settle at t={:.1f}s"

    def __init__(self, trace: Trace, nodes: Sequence[str] = ("a", "b"), policy: Policy | None = None,
                 params: PolicyParams | None = None, *, allowed: Mapping[str, Sequence[str]] | None = None,
                 check: Check | None = None, max_events: int | None = None) -> None:
        self.node_names = list(nodes)
        self.allowed = {s.name: list((allowed or {}).get(s.name, self.node_names)) for s in trace.residents}
        self.default = next((s.name for s in trace.residents if s.default), None)
        states: dict[str | None, SchedState] = {}
        home = self.allowed[self.default][0] if self.default else None
        for n in self.node_names:
            specs = [s for s in trace.residents if n in self.allowed[s.name]]
            phases = {self.default: Phase.ready} if n == home else {}
            states[n] = with_default(R.initial_state(specs, params, 0.0, phases), self.default, n == home)
        super().__init__(trace, policy or POLICIES["sovhub"], states, max_events=max_events)
        self.check = check
        self.moved = 0  # waiting leases moved to a node where their resident was ready

    def _stall_report(self, reason: str) -> dict:
        return {"at_s": round(self.now, 1), "reason": reason,
                "nodes": {n: {r: x.phase.value for r, x in st.residents.items()} for n, st in self.states.items()},
                "queue": [j.id for st in self.states.values() for j in st.queue][:20]}

    def _on_submit(self, arg) -> None:
        sid, k = arg
        s = self.sessions[sid]
        if self._to_cloud(s, k):
            return
        job = self._job(s, k, self.now)
        resident = s.steps[k].resident
        p = place(self.states, resident, self.allowed[resident], self.now, owner=sid, default=self.default)
        if p.node is None:
            self.m.failed += 1
            return
        self._enqueue(p.node, job, s, k)

    # -- policy ----------------------------------------------------------------------------
    def _rehome(self) -> None:
        if self.default is None:
            return
        home = default_home(self.states, self.default, self.allowed[self.default])
        self.states = {n: with_default(st, self.default, n == home) for n, st in self.states.items()}

    def _move(self) -> bool:
        """Waiting leases that can start at once on another node where their resident is ready."""
        out = moves(self.states, self.allowed, self.now)
        for job_id, src, dst in out:
            job = next(j for j in self.states[src].queue if j.id == job_id)
            self.states[src] = R.remove(self.states[src], job_id)
            self.states[dst] = R.submit(self.states[dst], job)
            self.placed[job_id] = dst
            self.moved += 1
        return bool(out)

    def _round(self) -> bool:
        self._rehome()
        changed = self._move()
        changed |= super()._round()
        if self.check is not None:
            self.check(self.now, self.states, self.placed)
        return changed

    def _counts(self) -> dict:
        counts = super()._counts()
        return {"nodes": len(self.node_names), "swaps": counts["swaps"], "swaps_by_node": dict(self.swaps_by_node),
                **counts, "moved": self.moved}

    def _unavoidable(self, out: dict, p: PolicyParams) -> dict:
        # `bound.unavoidable_steps` proves a step unservable on one exclusive pool; with several pools
        # another node may serve it, so no violation is proven unavoidable here
        return {"violations_unavoidable": 0, "violations_avoidable": sum(out["bound_violations"].values())}


def simulate_nodes(trace: Trace, nodes: int | Sequence[str] = 2, policy: str | Policy = "sovhub",
                   params: PolicyParams | None = None, **kw) -> dict:
    """Figures of one policy on `trace` with `nodes` identical pools (every resident allowed on each)."""
    names = [f"node{i + 1}" for i in range(nodes)] if isinstance(nodes, int) else list(nodes)
    fn = POLICIES[policy] if isinstance(policy, str) else policy
    return MultiSimulation(trace, names, fn, params, **kw).run()


def compare_nodes(trace: str, seed: int, seeds: int, nodes: int, policies: Sequence[str]) -> dict:
    """One box against `nodes` boxes on the same seeded traces, per policy: the `sovhub bench gpu`
    summary (min/median/max over seeds) for each, and the medians side by side (`table`)."""
    from statistics import median

    from hub.bench.gpu import _summary
    from hub.bench.gpusim.simulator import simulate
    from hub.bench.gpusim.traces import make

    traces = [make(trace, k) for k in range(seed, seed + seeds)]
    out: dict = {"trace": trace, "seed": seed, "seeds": seeds, "nodes": nodes, "summary": {}, "table": []}
    stalls = 0
    for name in policies:
        one = [{"seed": tr.seed, **simulate(tr, name)} for tr in traces]
        many = [{"seed": tr.seed, **simulate_nodes(tr, nodes, name)} for tr in traces]
        stalls += sum(1 for r in one + many if r["stalled"])
        out["summary"][name] = {"1": _summary(one, [None] * len(one)), str(nodes): _summary(many, [None] * len(many))}
        for label, runs in (("1", one), (str(nodes), many)):
            out["table"].append({
                "policy": name, "nodes": int(label),
                "swaps_median": median(r["swaps"] for r in runs),
                **{f"{c}_wait_p95_median_s": median(r["wait_p95_s"][c] for r in runs) for c in JOB_CLASSES},
                **{f"{c}_wait_max_s": max(r["wait_max_s"][c] for r in runs) for c in JOB_CLASSES},
                "bound_violations": sum(sum(r["bound_violations"].values()) for r in runs),
                "cloud_turns_median": median(r["cloud_turns"] for r in runs),
                "jobs_left": sum(r["jobs_left"] for r in runs),
                "stalls": sum(1 for r in runs if r["stalled"])})
    out["stalls"] = stalls
    out["ok"] = stalls == 0
    return out
