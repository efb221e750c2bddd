"""The simulator over several nodes: one pool per node, each decided by the single-pool policy.

A lease is placed when it is submitted (`hub.gpu.placement.place`, as `hub.gpu.nodes` does in the
hub), the default resident's home is recomputed before every decision, and every pool's policy is
asked what to do until none changes its mind. The same reducers, the same policy, the same traces
as `simulator.py`: `sovhub bench gpu --nodes 2` compares one box with two on identical arrivals.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping, Sequence

from hub.bench.gpusim.baselines import POLICIES, Policy
from hub.bench.gpusim.simulator import Stalled, _Metrics
from hub.bench.gpusim.traces import HOUR, Trace
from hub.gpu import reducers as R
from hub.gpu.model import (
    JOB_CLASSES,
    Dispatch,
    Fail,
    ForceUnload,
    Job,
    Load,
    Phase,
    PolicyParams,
    SchedState,
    Unload,
    WakeAt,
    Yield,
)
from hub.gpu.placement import default_home, moves, place, with_default
from hub.stats import percentile

Check = Callable[[float, Mapping[str, SchedState], Mapping[str, str]], None]


class MultiSimulation:
    """`trace` on `nodes` identical pools (unless `allowed` restricts a resident to some of them)."""

    def __init__(self, trace: Trace, nodes: Sequence[str] = ("a", "b"), policy: Policy | None = None,
                 params: PolicyParams | None = None, *, allowed: Mapping[str, Sequence[str]] | None = None,
                 check: Check | None = None, max_events: int | None = None) -> None:
        self.trace = trace
        self.policy = policy or POLICIES["sovhub"]
        self.node_names = list(nodes)
        self.allowed = {s.name: list((allowed or {}).get(s.name, self.node_names)) for s in trace.residents}
        self.default = next((s.name for s in trace.residents if s.default), None)
        self.states: dict[str, SchedState] = {}
        home = self.allowed[self.default][0] if self.default else None
        for n in self.node_names:
            specs = [s for s in trace.residents if n in self.allowed[s.name]]
            phases = {self.default: Phase.ready} if n == home else {}
            self.states[n] = with_default(R.initial_state(specs, params, 0.0, phases), self.default, n == home)
        self.check = check
        self.now = 0.0
        self.events: list = []
        self.seq = itertools.count()
        self.m = _Metrics()
        self.actual: dict[str, float] = {}
        self.placed: dict[str, str] = {}  # job id -> node
        self.step_of: dict[str, tuple[str, int]] = {}  # job id (a resumed lease too) -> (session, step)
        self.chunks: dict[str, int] = {}  # chunks of a lease with checkpoints still to render
        self.sessions = {s.id: s for s in trace.sessions}
        self.wakes: set[tuple[str, float]] = set()
        self.swaps_by_node = {n: 0 for n in self.node_names}
        self.since_dispatch = {n: 0 for n in self.node_names}
        steps = sum(len(s.steps) for s in trace.sessions)
        work = sum(st.actual_s + st.think_s for s in trace.sessions for st in s.steps)
        swap = max((trace.load_s.get(r.name, 0.0) + trace.unload_s.get(r.name, 0.0) for r in trace.residents),
                   default=0.0)
        self.max_events = max_events or 200 * (steps + 10) * len(self.node_names)
        self.max_time_s = 2 * trace.horizon_s + work + 2 * (steps + 5) * swap + HOUR
        self.max_loads_without_dispatch = 2 * len(trace.residents) + 4
        self.stalled: dict | None = None
        self.moved = 0  # waiting leases moved to a node where their resident was ready

    def push(self, at: float, kind: str, arg) -> None:
        heapq.heappush(self.events, (at, next(self.seq), kind, arg))

    def _waiting(self) -> bool:
        return any(st.queue or st.running for st in self.states.values())

    def run(self) -> dict:
        for s in self.trace.sessions:
            self.push(s.arrival + s.steps[0].think_s, "submit", (s.id, 0))
        handled = 0
        try:
            while self.events:
                at, _, kind, arg = heapq.heappop(self.events)
                handled += 1
                if handled > self.max_events:
                    raise Stalled(f"more than {self.max_events} events: the policy makes no progress")
                if at > self.max_time_s and self._waiting():
                    raise Stalled(f"work still waits at the time limit t={self.max_time_s:.0f}s")
                self._advance(at)
                if kind == "wake":
                    self.wakes.discard(arg)
                    if self._quiet():
                        continue
                else:
                    getattr(self, f"_on_{kind}")(arg)
                self._decide()
            if any(st.queue for st in self.states.values()):
                raise Stalled("nothing left to happen but jobs wait (deadlock)")
        except Stalled as exc:
            self.stalled = {"at_s": round(self.now, 1), "reason": str(exc),
                            "nodes": {n: {r: x.phase.value for r, x in st.residents.items()}
                                      for n, st in self.states.items()},
                            "queue": [j.id for st in self.states.values() for j in st.queue][:20]}
        return self._report()

    def _quiet(self) -> bool:
        return not any(k != "wake" for _, _, k, _ in self.events) and not self._waiting() \
            and all(r.phase in (Phase.ready, Phase.stopped) for st in self.states.values()
                    for r in st.residents.values()) and self.now > self.trace.horizon_s * 2

    def _advance(self, at: float) -> None:
        dt = at - self.now
        if dt > 0:
            sts = self.states.values()
            if any(r.phase in (Phase.starting, Phase.stopping) for st in sts for r in st.residents.values()):
                self.m.swap_s += dt
            elif any(st.queue for st in sts) and not any(st.running for st in sts):
                self.m.idle_while_queued += dt
        self.now = at

    # -- events ----------------------------------------------------------------------------
    def _loaded_anywhere(self, resident: str) -> bool:
        return any(st.phase(resident) == Phase.ready for st in self.states.values() if resident in st.specs)

    def _on_submit(self, arg) -> None:
        sid, k = arg
        s = self.sessions[sid]
        step = s.steps[k]
        if s.auto and not self._loaded_anywhere(step.resident):
            self.m.cloud += 1  # the router answers an `auto` room from the cloud while no LLM is resident
            self.push(self.now + step.actual_s, "cloud_done", f"{sid}:{k}")
            return
        nxt = s.steps[k + 1].resident if k + 1 < len(s.steps) and s.declares_next else None
        job = Job(id=f"{sid}:{k}", resident=step.resident, job_class=s.job_class, priority=s.priority,
                  est_seconds=step.est_s, enqueued_at=self.now, owner=sid, then=nxt, label=s.kind,
                  checkpoint_s=step.est_s / step.chunks if step.chunks > 1 else None)
        p = place(self.states, step.resident, self.allowed[step.resident], self.now, owner=sid, default=self.default)
        if p.node is None:
            self.m.failed += 1
            return
        self.actual[job.id] = step.actual_s
        self.step_of[job.id] = (sid, k)
        self.chunks[job.id] = step.chunks
        self.placed[job.id] = p.node
        self.states[p.node] = R.submit(self.states[p.node], job)
        self.m.submitted += 1
        if s.cancel_after_s is not None:
            self.push(self.now + s.cancel_after_s, "cancel", job.id)

    def _on_cancel(self, job_id: str) -> None:
        n = self.placed[job_id]
        if any(j.id == job_id for j in self.states[n].queue):
            self.states[n] = R.remove(self.states[n], job_id)
            self.m.cancelled += 1

    def _on_cloud_done(self, job_id: str) -> None:
        self._next_step(job_id)

    def _on_finish(self, job_id: str) -> None:
        n = self.placed[job_id]
        if not any(j.id == job_id for j in self.states[n].running):
            return
        self.states[n] = R.finish(self.states[n], job_id, self.now)
        self.m.done += 1
        self._next_step(job_id)

    def _next_step(self, job_id: str) -> None:
        sid, k = self.step_of.get(job_id) or (job_id.rsplit(":", 1)[0], int(job_id.rsplit(":", 1)[1]))
        s = self.sessions[sid]
        if k + 1 < len(s.steps):
            self.push(self.now + s.steps[k + 1].think_s, "submit", (sid, k + 1))

    def _on_checkpoint(self, arg) -> None:
        """A lease asked to yield reached a checkpoint: the rest of its chunks wait again on the same
        node (a lease is never moved; finished chunks are not redone)."""
        job_id, done = arg
        n = self.placed[job_id]
        job = next((j for j in self.states[n].running if j.id == job_id), None)
        if job is None:
            return
        total = self.chunks[job_id]
        rest_id = f"{job_id}+{job.slices + 1}"
        self.states[n] = R.yielded(self.states[n], job_id, self.now, rest_id, done / total)
        self.actual[rest_id] = self.actual[job_id] * (total - done) / total
        self.chunks[rest_id] = total - done
        self.step_of[rest_id] = self.step_of[job_id]
        self.placed[rest_id] = n
        self.m.yields += 1

    def _on_ready(self, arg) -> None:
        n, name = arg
        self.states[n] = R.ready(self.states[n], name, self.now)

    def _on_stopped(self, arg) -> None:
        n, name = arg
        self.states[n] = R.stopped(self.states[n], name, self.now)

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

    def _decide(self) -> None:
        for _ in range(50):
            self._rehome()
            changed = self._move()
            for n in self.node_names:
                for a in self.policy(self.states[n], self.now):
                    changed |= self._apply(n, a)
            if self.check is not None:
                self.check(self.now, self.states, self.placed)
            if not changed:
                return
        raise Stalled(f"the policies do not settle at t={self.now:.1f}s")

    def _apply(self, n: str, a) -> bool:
        st = self.states[n]
        if isinstance(a, Dispatch):
            job = next(j for j in st.queue if j.id == a.job_id)
            self.states[n] = R.dispatch(st, a.job_id, self.now)
            self.m.waits.setdefault(job.job_class, []).append(self.now - job.enqueued_at)
            self.m.history.append((self.now, "dispatch", f"{job.resident}@{n}"))
            self.since_dispatch[n] = 0
            self.push(self.now + self.actual[job.id], "finish", job.id)
            return True
        if isinstance(a, Yield):
            job = next((j for j in st.running if j.id == a.job_id), None)
            if job is None or job.yield_asked:
                return False
            self.states[n] = R.ask_yield(st, a.job_id)
            total = self.chunks.get(job.id, 1)
            per = self.actual[job.id] / total
            done = int((self.now - job.started_at) / per + 1e-9) + 1  # the chunk under way is finished
            if done < total:
                self.push(job.started_at + done * per, "checkpoint", (job.id, done))
            return True
        if isinstance(a, Load):
            if st.phase(a.resident) != Phase.stopped:
                return False
            self.states[n] = R.load_started(st, a.resident, self.now)
            self.m.swaps += 1
            self.swaps_by_node[n] += 1
            self.m.loads_for_work += any(j.resident == a.resident for j in st.queue)
            self.since_dispatch[n] += 1
            if self.since_dispatch[n] > self.max_loads_without_dispatch:
                raise Stalled(f"{self.since_dispatch[n]} loads on {n} without a dispatch (a livelock)")
            self.m.history.append((self.now, "load", f"{a.resident}@{n}"))
            self.push(self.now + self.trace.load_s[a.resident], "ready", (n, a.resident))
            return True
        if isinstance(a, Unload | ForceUnload):
            if st.phase(a.resident) != Phase.ready:
                return False
            if isinstance(a, Unload) and st.running_on(a.resident):
                raise RuntimeError(f"t={self.now}: policy evicts {a.resident} on {n} with work in flight")
            if st.residents[a.resident].fresh and any(j.resident == a.resident for j in st.queue):
                self.m.unloads_unserved += 1
            if isinstance(a, ForceUnload):
                for jid in a.job_ids:
                    self.states[n] = R.remove(self.states[n], jid)
                    self.m.failed += 1
            self.states[n] = R.stop_started(self.states[n], a.resident, self.now)
            self.m.history.append((self.now, "unload", f"{a.resident}@{n}"))
            self.push(self.now + self.trace.unload_s[a.resident], "stopped", (n, a.resident))
            return True
        if isinstance(a, Fail):
            self.states[n] = R.remove(st, a.job_id)
            self.m.failed += 1
            return True
        if isinstance(a, WakeAt):
            if a.at > self.now and (n, a.at) not in self.wakes:
                self.wakes.add((n, a.at))
                self.push(a.at, "wake", (n, a.at))
            return False
        return False

    def _report(self) -> dict:
        m = self.m
        p = next(iter(self.states.values())).params
        waits = {c: list(m.waits.get(c, [])) for c in JOB_CLASSES}
        for st in self.states.values():
            for j in st.queue:
                waits.setdefault(j.job_class, []).append(self.now - j.enqueued_at)
        out = {
            "nodes": len(self.node_names),
            "swaps": m.swaps,
            "swaps_by_node": dict(self.swaps_by_node),
            "swap_s": round(m.swap_s, 1),
            "idle_while_queued_s": round(m.idle_while_queued, 1),
            "jobs_done": m.done,
            "jobs_failed": m.failed,
            "jobs_cancelled": m.cancelled,
            "jobs_left": sum(len(st.queue) + len(st.running) for st in self.states.values()),
            "jobs_submitted": m.submitted,
            "cloud_turns": m.cloud,
            "loads_for_work": m.loads_for_work,
            "unloads_unserved": m.unloads_unserved,
            "yields": m.yields,
            "moved": self.moved,
            "stalled": self.stalled,
        }
        out["wait_p50_s"] = {c: round(percentile(w, 0.5), 1) for c, w in waits.items()}
        out["wait_p95_s"] = {c: round(percentile(w, 0.95), 1) for c, w in waits.items()}
        out["wait_max_s"] = {c: round(max(w, default=0.0), 1) for c, w in waits.items()}
        out["wait_mean_s"] = {c: round(sum(w) / len(w), 1) if w else 0.0 for c, w in waits.items()}
        out["max_wait_bound_s"] = {c: p.max_wait(c) for c in JOB_CLASSES}
        out["bound_violations"] = {c: sum(1 for x in w if x > p.max_wait(c) + 1e-6) for c, w in waits.items()}
        out["wait_within_bound"] = not any(out["bound_violations"].values())
        # `bound.unavoidable_steps` proves a step unservable on one exclusive pool; with several pools
        # another node may serve it, so no violation is proven unavoidable here
        out["violations_unavoidable"] = 0
        out["violations_avoidable"] = sum(out["bound_violations"].values())
        return out


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
