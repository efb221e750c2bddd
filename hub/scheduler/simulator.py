"""Run a policy over a trace under a virtual clock with simulated residents.

The same reducers as the runtime turn each event into a new state; after every event the policy
is asked what to do, so a policy is judged exactly as it would run in the hub. A follow-up step is
submitted as its own event after the previous step's release, as a real client's next request
arrives after the scheduler has already seen the release.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

from hub.scheduler import reducers as R
from hub.scheduler.baselines import POLICIES, Policy
from hub.scheduler.model import (
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
)
from hub.scheduler.traces import Trace


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


@dataclass
class _Metrics:
    swaps: int = 0
    swap_seconds: float = 0.0
    idle_while_queued: float = 0.0
    done: int = 0
    failed: int = 0
    waits: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in JOB_CLASSES})
    history: list[tuple[float, str, str]] = field(default_factory=list)


class Simulation:
    def __init__(self, trace: Trace, policy: Policy, params: PolicyParams | None = None) -> None:
        self.trace = trace
        self.policy = policy
        default = next((s.name for s in trace.residents if s.default), None)
        phases = {default: Phase.ready} if default else {}
        self.state: SchedState = R.initial_state(trace.residents, params, 0.0, phases)
        self.now = 0.0
        self.events: list = []
        self.seq = itertools.count()
        self.m = _Metrics()
        self.actual: dict[str, float] = {}
        self.sessions = {s.id: s for s in trace.sessions}
        self.wakes: set[float] = set()
        self.transitions = 0

    def push(self, at: float, kind: str, arg) -> None:
        heapq.heappush(self.events, (at, next(self.seq), kind, arg))

    def run(self) -> dict:
        for s in self.trace.sessions:
            self.push(s.arrival + s.steps[0].think_s, "submit", (s.id, 0))
        while self.events:
            at, _, kind, arg = heapq.heappop(self.events)
            self._advance(at)
            if kind == "wake":
                self.wakes.discard(at)
                if self._quiet():
                    continue
            else:
                getattr(self, f"_on_{kind}")(arg)
            self._decide()
        return self._report()

    def _quiet(self) -> bool:
        st = self.state
        return not any(k != "wake" for _, _, k, _ in self.events) and not st.queue and not st.running \
            and all(r.phase in (Phase.ready, Phase.stopped) for r in st.residents.values()) \
            and self.now > self.trace.horizon_s * 2

    def _advance(self, at: float) -> None:
        dt = at - self.now
        st = self.state
        if dt > 0 and st.queue and not st.running and all(
                r.phase in (Phase.ready, Phase.stopped) for r in st.residents.values()):
            self.m.idle_while_queued += dt
        self.now = at

    # -- events ----------------------------------------------------------------------------
    def _on_submit(self, arg) -> None:
        sid, k = arg
        s = self.sessions[sid]
        step = s.steps[k]
        nxt = s.steps[k + 1].resident if k + 1 < len(s.steps) else None
        job = Job(id=f"{sid}:{k}", resident=step.resident, job_class=s.job_class, priority=s.priority,
                  est_seconds=step.est_s, enqueued_at=self.now, owner=sid, then=nxt, label=s.kind)
        self.actual[job.id] = step.actual_s
        self.state = R.submit(self.state, job)

    def _on_finish(self, job_id: str) -> None:
        if not any(j.id == job_id for j in self.state.running):
            return  # failed earlier (force-stopped)
        self.state = R.finish(self.state, job_id, self.now)
        self.m.done += 1
        sid, k = job_id.rsplit(":", 1)
        s = self.sessions[sid]
        if int(k) + 1 < len(s.steps):
            self.push(self.now + s.steps[int(k) + 1].think_s, "submit", (sid, int(k) + 1))

    def _on_ready(self, name: str) -> None:
        since = self.state.residents[name].since
        self.m.swap_seconds += self.now - since
        self.state = R.ready(self.state, name, self.now)

    def _on_stopped(self, name: str) -> None:
        since = self.state.residents[name].since
        self.m.swap_seconds += self.now - since
        self.state = R.stopped(self.state, name, self.now)

    # -- policy ----------------------------------------------------------------------------
    def _decide(self) -> None:
        for _ in range(20):
            acts = self.policy(self.state, self.now)
            changed = False
            for a in acts:
                changed |= self._apply(a)
            if not changed:
                return
        raise RuntimeError(f"policy does not settle at t={self.now}")

    def _apply(self, a) -> bool:
        st = self.state
        if isinstance(a, Dispatch):
            job = next(j for j in st.queue if j.id == a.job_id)
            self.state = R.dispatch(st, a.job_id, self.now)
            self.m.waits.setdefault(job.job_class, []).append(self.now - job.enqueued_at)
            self.push(self.now + self.actual[job.id], "finish", job.id)
            return True
        if isinstance(a, Load):
            if st.phase(a.resident) != Phase.stopped:
                return False
            self.state = R.load_started(st, a.resident, self.now)
            self.m.swaps += 1
            self.m.history.append((self.now, "load", a.resident))
            self.push(self.now + self.trace.load_s[a.resident], "ready", a.resident)
            return True
        if isinstance(a, Unload | ForceUnload):
            if st.phase(a.resident) != Phase.ready:
                return False
            if isinstance(a, Unload) and st.running_on(a.resident):
                raise RuntimeError(f"t={self.now}: policy evicts {a.resident} with work in flight")
            if isinstance(a, ForceUnload):
                for jid in a.job_ids:
                    self.state = R.remove(self.state, jid)
                    self.m.failed += 1
            self.state = R.stop_started(self.state, a.resident, self.now)
            self.m.history.append((self.now, "unload", a.resident))
            self.push(self.now + self.trace.unload_s[a.resident], "stopped", a.resident)
            return True
        if isinstance(a, Fail):
            self.state = R.remove(st, a.job_id)
            self.m.failed += 1
            return True
        if isinstance(a, WakeAt):
            if a.at > self.now and a.at not in self.wakes:
                self.wakes.add(a.at)
                self.push(a.at, "wake", None)
            return False
        return False

    def _report(self) -> dict:
        m = self.m
        p = self.state.params
        out = {
            "swaps": m.swaps,
            "swap_seconds": round(m.swap_seconds, 1),
            "gpu_idle_while_queued_s": round(m.idle_while_queued, 1),
            "jobs_done": m.done,
            "jobs_failed": m.failed,
            "jobs_left": len(self.state.queue) + len(self.state.running),
        }
        waits = {c: m.waits.get(c, []) for c in JOB_CLASSES}
        out["wait_p50_s"] = {c: round(percentile(w, 0.5), 1) for c, w in waits.items()}
        out["wait_p95_s"] = {c: round(percentile(w, 0.95), 1) for c, w in waits.items()}
        out["wait_max_s"] = {c: round(max(w, default=0.0), 1) for c, w in waits.items()}
        out["max_wait_bound_s"] = {c: p.max_wait(c) for c in JOB_CLASSES}
        out["wait_within_bound"] = all(
            max(m.waits.get(c, []), default=0.0) <= p.max_wait(c) for c in JOB_CLASSES)
        return out


def simulate(trace: Trace, policy: str | Policy = "sovhub", params: PolicyParams | None = None) -> dict:
    fn = POLICIES[policy] if isinstance(policy, str) else policy
    return Simulation(trace, fn, params).run()
