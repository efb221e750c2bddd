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

from hub.bench.gpusim.baselines import POLICIES, Policy
from hub.bench.gpusim.bound import unavoidable_steps
from hub.bench.gpusim.traces import HOUR, Trace
from hub.gpu import reducers as R
from hub.gpu.model import (
    JOB_CLASSES,
    Dispatch,
    Expected,
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
from hub.stats import percentile


@dataclass
class _Metrics:
    swaps: int = 0
    swap_s: float = 0.0  # time during which some resident was loading or unloading
    idle_while_queued: float = 0.0  # nothing running, nothing loading or unloading, work waiting
    done: int = 0
    failed: int = 0
    waits: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in JOB_CLASSES})
    history: list[tuple[float, str, str]] = field(default_factory=list)
    loads_for_work: int = 0  # loads of a resident that had a job waiting for it
    submitted: int = 0
    cancelled: int = 0
    cloud: int = 0  # `auto` chat turns the router sent to Claude
    unloads_unserved: int = 0  # a resident unloaded with a job for it waiting and no dispatch since its load
    yields: int = 0  # leases that released the GPU at a checkpoint for a higher-class job
    rejected: int = 0  # requests the policy refused (429) and the client tried again later


RETRY_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)  # a client's waits before retrying a 429, capped


class Stalled(Exception):
    """The policy stopped making progress (a livelock, a deadlock, or it never settles)."""


class PoolSimulation:
    """What one pool and several pools simulate alike: the event loop and its stall checks, the events,
    how each policy action changes a pool and the figures, so that one node in `multinode.py` is
    exactly the single pool. A pool is named by its node (None for the single pool); `placed` says
    which pool holds each job. Subclasses submit (admission or placement) and decide their own way."""

    unsettled = "the policy does not settle at t={:.1f}s (it keeps changing its mind)"

    def __init__(self, trace: Trace, policy: Policy, states: dict[str | None, SchedState], *,
                 max_events: int | None = None, max_time_s: float | None = None) -> None:
        self.trace = trace
        self.policy = policy
        self.states = states
        self.now = 0.0
        self.events: list = []
        self.seq = itertools.count()
        self.m = _Metrics()
        self.actual: dict[str, float] = {}
        self.placed: dict[str, str | None] = {}  # job id -> the pool that holds it
        self.step_of: dict[str, tuple[str, int]] = {}  # job id (a resumed lease too) -> (session, step)
        self.chunks: dict[str, int] = {}  # chunks of a lease with checkpoints still to render
        self.violations: list[dict] = []  # every wait past its bound: which job, which step
        self.sessions = {s.id: s for s in trace.sessions}
        self.wakes: set[tuple[str | None, float]] = set()
        self.swaps_by_node = {n: 0 for n in states}
        self.since_dispatch = {n: 0 for n in states}  # loads since the pool's last dispatch
        steps = sum(len(s.steps) for s in trace.sessions)
        work = sum(st.actual_s + st.think_s for s in trace.sessions for st in s.steps)
        swap = max((trace.load_s.get(r.name, 0.0) + trace.unload_s.get(r.name, 0.0) for r in trace.residents),
                   default=0.0)
        # generous limits: any policy that makes progress ends far inside them
        self.max_events = max_events or 200 * (steps + 10) * len(states)
        self.max_time_s = max_time_s or 2 * trace.horizon_s + work + 2 * (steps + 5) * swap + HOUR
        self.max_loads_without_dispatch = 2 * len(trace.residents) + 4
        self.stalled: dict | None = None

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
            queued = sum(len(st.queue) for st in self.states.values())
            if queued:
                raise Stalled(f"nothing left to happen but {queued} jobs wait (deadlock)")
        except Stalled as exc:
            self.stalled = self._stall_report(str(exc))
        return self._report()

    def _stall_report(self, reason: str) -> dict:
        raise NotImplementedError

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

    def _to_cloud(self, s, k: int) -> bool:
        """The router sends an `auto` room's turn to Claude while its LLM is resident nowhere."""
        step = s.steps[k]
        if not s.auto or self._loaded_anywhere(step.resident):
            return False
        self.m.cloud += 1
        self.push(self.now + step.actual_s, "cloud_done", f"{s.id}:{k}")
        return True

    def _job(self, s, k: int, enqueued_at: float) -> Job:
        step = s.steps[k]
        nxt = s.steps[k + 1].resident if k + 1 < len(s.steps) and s.declares_next else None
        return Job(id=f"{s.id}:{k}", resident=step.resident, job_class=s.job_class, priority=s.priority,
                   est_seconds=step.est_s, enqueued_at=enqueued_at, owner=s.id, then=nxt, label=s.kind,
                   checkpoint_s=step.est_s / step.chunks if step.chunks > 1 else None)

    def _enqueue(self, n: str | None, job: Job, s, k: int) -> None:
        step = s.steps[k]
        self.actual[job.id] = step.actual_s
        self.step_of[job.id] = (s.id, k)
        self.chunks[job.id] = step.chunks
        self.placed[job.id] = n
        self.states[n] = R.submit(self.states[n], job)
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
            return  # failed earlier (force-stopped)
        self.states[n] = R.finish(self.states[n], job_id, self.now)
        self.m.done += 1
        self._next_step(job_id)

    def _next_step(self, job_id: str) -> None:
        sid, k = self.step_of.get(job_id) or (job_id.rsplit(":", 1)[0], int(job_id.rsplit(":", 1)[1]))
        s = self.sessions[sid]
        if k + 1 < len(s.steps):
            self.push(self.now + s.steps[k + 1].think_s, "submit", (sid, k + 1))

    def _on_checkpoint(self, arg) -> None:
        """A lease asked to yield reached its checkpoint after `done` chunks: it releases the GPU and
        the rest of its chunks wait again in the same pool (none is rendered twice, a lease is never moved)."""
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
    def _decide(self) -> None:
        for _ in range(50):
            if not self._round():
                return
        raise Stalled(self.unsettled.format(self.now))

    def _round(self) -> bool:
        """Asks every pool's policy once and applies its actions; whether anything changed."""
        changed = False
        for n in list(self.states):
            for a in self.policy(self.states[n], self.now):
                changed |= self._apply(n, a)
        return changed

    def _apply(self, n: str | None, a) -> bool:
        st = self.states[n]
        on = "" if n is None else f" on {n}"

        def where(resident: str) -> str:
            return resident if n is None else f"{resident}@{n}"

        if isinstance(a, Dispatch):
            job = next(j for j in st.queue if j.id == a.job_id)
            self.states[n] = R.dispatch(st, a.job_id, self.now)
            self.m.waits.setdefault(job.job_class, []).append(self.now - job.enqueued_at)
            self.m.history.append((self.now, "dispatch", where(job.resident)))
            self.since_dispatch[n] = 0
            if self.now - job.enqueued_at > self.states[n].params.max_wait(job.job_class) + 1e-6:
                self.violations.append({"job": job.id, "step": self.step_of.get(job.id), "class": job.job_class,
                                        "at_s": round(job.enqueued_at, 1),
                                        "waited_s": round(self.now - job.enqueued_at, 1), "resumed": job.slices > 1})
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
                raise Stalled(f"{self.since_dispatch[n]} loads{on} without a dispatch (a livelock)")
            self.m.history.append((self.now, "load", where(a.resident)))
            self.push(self.now + self.trace.load_s[a.resident], "ready", (n, a.resident))
            return True
        if isinstance(a, Unload | ForceUnload):
            if st.phase(a.resident) != Phase.ready:
                return False
            if isinstance(a, Unload) and st.running_on(a.resident):
                raise RuntimeError(f"t={self.now}: policy evicts {a.resident}{on} with work in flight")
            if st.residents[a.resident].fresh and any(j.resident == a.resident for j in st.queue):
                self.m.unloads_unserved += 1
            if isinstance(a, ForceUnload):
                for jid in a.job_ids:
                    self.states[n] = R.remove(self.states[n], jid)
                    self.m.failed += 1
            self.states[n] = R.stop_started(self.states[n], a.resident, self.now)
            self.m.history.append((self.now, "unload", where(a.resident)))
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

    # -- figures ---------------------------------------------------------------------------
    def _counts(self) -> dict:
        m = self.m
        return {
            "swaps": m.swaps,
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
        }

    def _unavoidable(self, out: dict, p: PolicyParams) -> dict:
        """`violations_unavoidable` and its kin, from the bound violations already in `out`."""
        raise NotImplementedError

    def _report(self) -> dict:
        p = next(iter(self.states.values())).params
        waits = {c: list(self.m.waits.get(c, [])) for c in JOB_CLASSES}
        for st in self.states.values():
            for j in st.queue:  # still waiting at the end: their wait so far counts
                waits.setdefault(j.job_class, []).append(self.now - j.enqueued_at)
        out = {**self._counts(), "stalled": self.stalled}
        out["wait_p50_s"] = {c: round(percentile(w, 0.5), 1) for c, w in waits.items()}
        out["wait_p95_s"] = {c: round(percentile(w, 0.95), 1) for c, w in waits.items()}
        out["wait_max_s"] = {c: round(max(w, default=0.0), 1) for c, w in waits.items()}
        out["wait_mean_s"] = {c: round(sum(w) / len(w), 1) if w else 0.0 for c, w in waits.items()}
        out["max_wait_bound_s"] = {c: p.max_wait(c) for c in JOB_CLASSES}
        out["bound_violations"] = {c: sum(1 for x in w if x > p.max_wait(c) + 1e-6) for c, w in waits.items()}
        out["wait_within_bound"] = not any(out["bound_violations"].values())
        return {**out, **self._unavoidable(out, p)}


class Simulation(PoolSimulation):
    """One exclusive pool, the GB10's; the policy may refuse a request (429) and its client retries."""

    def __init__(self, trace: Trace, policy: Policy, params: PolicyParams | None = None, *,
                 max_events: int | None = None, max_time_s: float | None = None, preload: bool = False) -> None:
        default = next((s.name for s in trace.residents if s.default), None)
        phases = {default: Phase.ready} if default else {}
        state = R.initial_state(trace.residents, params, 0.0, phases)
        if preload:  # the hub knows its schedules' fire times: the policy sees them ahead
            state = R.expect(state, [
                Expected(s.steps[0].resident, s.arrival + s.steps[0].think_s, s.id)
                for s in trace.sessions if s.job_class == "scheduled"])
        super().__init__(trace, policy, {None: state}, max_events=max_events, max_time_s=max_time_s)

    @property
    def state(self) -> SchedState:
        return self.states[None]

    @state.setter
    def state(self, value: SchedState) -> None:
        self.states[None] = value

    def run(self) -> dict:
        # an operator pin may hold work back until it expires (the one documented wait past a bound)
        self.max_time_s += max((pin.until for pin in self.state.pins), default=0.0)
        return super().run()

    def _stall_report(self, reason: str) -> dict:
        st = self.state
        return {"at_s": round(self.now, 1), "reason": reason,
                "residents": {n: r.phase.value for n, r in st.residents.items()},
                "queue": [{"id": j.id, "resident": j.resident, "class": j.job_class,
                           "waited_s": round(self.now - j.enqueued_at, 1)} for j in st.queue[:20]],
                "running": [j.id for j in st.running],
                "last_actions": [f"{t:.0f}s {k} {r}" for t, k, r in self.m.history[-8:]]}

    def _on_submit(self, arg) -> None:
        sid, k, *retry = arg  # a retry after a 429 carries (first attempt, attempts so far)
        first, attempts = retry if retry else (self.now, 0)
        s = self.sessions[sid]
        if not attempts and self._to_cloud(s, k):
            return
        job = self._job(s, k, first)
        admit = getattr(self.policy, "admit", None)
        if admit is not None and not admit(self.state, job, self.now):
            # refused (429): the client retries with exponential back-off; its wait counts from the first try
            self.m.rejected += 1
            self.push(self.now + RETRY_BACKOFF_S[min(attempts, len(RETRY_BACKOFF_S) - 1)], "submit",
                      (sid, k, first, attempts + 1))
            return
        self._enqueue(None, job, s, k)

    def _counts(self) -> dict:
        return {**super()._counts(), "rejected_429": self.m.rejected}

    def _unavoidable(self, out: dict, p: PolicyParams) -> dict:
        # which violations no schedule could avoid (`bound.unavoidable_steps`); a resumed lease's wait
        # and a job still queued at the end always count as avoidable
        proven = unavoidable_steps(self.trace, p)
        unavoidable = sum(1 for v in self.violations if not v["resumed"] and v["step"] in proven)
        return {"violations_unavoidable": unavoidable,
                "violations_avoidable": sum(out["bound_violations"].values()) - unavoidable,
                "violations": [{**v, "step": list(v["step"]) if v["step"] else None,
                                "unavoidable": not v["resumed"] and v["step"] in proven}
                               for v in self.violations[:20]]}


def simulate(trace: Trace, policy: str | Policy = "sovhub", params: PolicyParams | None = None,
             **limits) -> dict:  # limits: max_events, max_time_s, preload
    """Figures of one policy on one trace; `stalled` is None unless the policy stopped making progress."""
    fn = POLICIES[policy] if isinstance(policy, str) else policy
    return Simulation(trace, fn, params, **limits).run()
