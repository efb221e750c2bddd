"""Pure state transitions: every observed fact (a job submitted, a resident ready, ...) makes a new state.

The runtime loop and the simulator both feed facts through these, so the policy sees the same kind
of state in production and under the virtual clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType

from hub.gpu.model import (
    Expected,
    Job,
    Phase,
    Pin,
    PolicyParams,
    Reservation,
    ResidentSpec,
    ResidentState,
    SchedState,
)


def initial_state(
    specs: Iterable[ResidentSpec],
    params: PolicyParams | None = None,
    now: float = 0.0,
    phases: Mapping[str, Phase] | None = None,
    swap_in_s: Mapping[str, float] | None = None,
    swap_out_s: Mapping[str, float] | None = None,
) -> SchedState:
    specs = list(specs)
    phases = phases or {}
    return SchedState(
        specs=MappingProxyType({s.name: s for s in specs}),
        residents=MappingProxyType({
            s.name: ResidentState(s.name, phases.get(s.name, Phase.stopped), now, now) for s in specs}),
        params=params or PolicyParams(),
        swap_in_s=MappingProxyType(dict(swap_in_s or {})),
        swap_out_s=MappingProxyType(dict(swap_out_s or {})),
    )


def _set_resident(state: SchedState, name: str, **changes) -> SchedState:
    residents = dict(state.residents)
    residents[name] = replace(residents.get(name) or ResidentState(name), **changes)
    return replace(state, residents=MappingProxyType(residents))


def _learn(avg: Mapping[str, float], name: str, prior: float, measured: float, alpha: float):
    old = avg.get(name, prior)
    new = dict(avg)
    new[name] = (1 - alpha) * old + alpha * measured if name in avg else measured
    return MappingProxyType(new)


def submit(state: SchedState, job: Job) -> SchedState:
    """Queue a lease request; a declared follow-up step claims its reservation (and its age)."""
    owner = job.owner or job.id
    kept = None
    rest = []
    for r in state.reservations:
        if kept is None and r.owner == owner and r.resident == job.resident:
            kept = r
        else:
            rest.append(r)
    if kept is not None:
        job = replace(job, rank_since=min(kept.rank_since, job.age_origin),
                      continues=kept.after == job.resident)
    state = replace(state, queue=(*state.queue, job), reservations=tuple(rest))
    return unpark(state, job.resident) if job.resident in state.parked else state


def dispatch(state: SchedState, job_id: str, now: float) -> SchedState:
    """The job got its lease; jobs it overtook while they waited for a swap count one overtake."""
    from hub.gpu.policy import effective_priority, overtakes

    job = next(j for j in state.queue if j.id == job_id)
    mine = effective_priority(job, state.params, now)
    queue = []
    for j in state.queue:
        if j.id == job_id:
            continue
        if (overtakes(job, j, state.params) and state.phase(j.resident) != Phase.ready and j.resident != job.resident
                and effective_priority(j, state.params, now) > mine):
            j = replace(j, overtaken=j.overtaken + 1)
        queue.append(j)
    state = replace(state, queue=tuple(queue), running=(*state.running, replace(job, started_at=now)))
    return _set_resident(state, job.resident, last_active=now, fresh=False)


def finish(state: SchedState, job_id: str, now: float) -> SchedState:
    """A running job released its lease (done, failed or cancelled)."""
    job = next((j for j in state.running if j.id == job_id), None)
    if job is None:
        return remove(state, job_id)
    state = replace(state, running=tuple(j for j in state.running if j.id != job_id))
    state = _set_resident(state, job.resident, last_active=now)
    if job.then and job.then in state.specs:
        res = Reservation(owner=job.owner or job.id, resident=job.then, job_class=job.job_class,
                          priority=job.priority, rank_since=job.enqueued_at,
                          expires_at=now + state.params.anticipation_s, after=job.resident)
        state = replace(state, reservations=(*state.reservations, res))
    elif job.job_class == "interactive" and state.params.conversation_s > 0:
        # a conversation is closed loop: the next question usually follows the answer within a
        # couple of minutes, so the answer's resident is kept for it (not left for lower work)
        res = Reservation(owner=job.owner or job.id, resident=job.resident, job_class=job.job_class,
                          priority=job.priority, rank_since=now,
                          expires_at=now + state.params.conversation_s, after=job.resident, conversation=True)
        state = replace(state, reservations=(*state.reservations, res))
    return state


def ask_yield(state: SchedState, job_id: str) -> SchedState:
    """The policy asked a running lease with checkpoints to release the GPU at its next checkpoint."""
    return replace(state, running=tuple(replace(j, yield_asked=True) if j.id == job_id else j
                                        for j in state.running))


def yielded(state: SchedState, job_id: str, now: float, rest_id: str, done_share: float = 0.0) -> SchedState:
    """A lease reached a checkpoint after being asked to yield: it releases its resident (no hold, no
    reservation: the work is not done) and the rest of its work is queued again as `rest_id`, with
    the age of the original request (it does not lose its place to aging) and its estimate reduced
    by the share already done. Finished chunks are not redone."""
    job = next((j for j in state.running if j.id == job_id), None)
    if job is None:
        return state
    state = replace(state, running=tuple(j for j in state.running if j.id != job_id))
    state = _set_resident(state, job.resident, last_active=now)
    est = max(job.checkpoint_s or 0.0, job.est_seconds * (1.0 - min(1.0, max(0.0, done_share))))
    rest = replace(job, id=rest_id, est_seconds=est, enqueued_at=now, rank_since=job.age_origin,
                   started_at=None, overtaken=0, continues=False, yield_asked=False, slices=job.slices + 1)
    return replace(state, queue=(*state.queue, rest))


def remove(state: SchedState, job_id: str) -> SchedState:
    """Drop a job wherever it is (cancelled or failed) without leaving a reservation."""
    return replace(state, queue=tuple(j for j in state.queue if j.id != job_id),
                   running=tuple(j for j in state.running if j.id != job_id))


def drop_reservations(state: SchedState, owner: str) -> SchedState:
    return replace(state, reservations=tuple(r for r in state.reservations if r.owner != owner))


def prune(state: SchedState, now: float) -> SchedState:
    """Forget reservations whose follow-up never came and pins that expired."""
    live = tuple(r for r in state.reservations if r.expires_at > now)
    if len(live) != len(state.reservations):
        state = replace(state, reservations=live)
    pins = tuple(p for p in state.pins if p.until > now)
    return state if len(pins) == len(state.pins) else replace(state, pins=pins)


def load_started(state: SchedState, name: str, now: float) -> SchedState:
    return _set_resident(state, name, phase=Phase.starting, since=now)


def ready(state: SchedState, name: str, now: float, measured: bool = True) -> SchedState:
    """The resident answers its readiness probe (and warm-up); learn what the start cost."""
    r = state.residents[name]
    if measured and r.phase == Phase.starting:
        state = replace(state, swap_in_s=_learn(state.swap_in_s, name, state.specs[name].swap_in_s,
                                                now - r.since, state.params.swap_cost_alpha))
    return _set_resident(state, name, phase=Phase.ready, since=now, last_active=now,
                         error=None, failed_at=None, fresh=True)


def stop_started(state: SchedState, name: str, now: float) -> SchedState:
    if name in state.unloads:
        state = replace(state, unloads=tuple(u for u in state.unloads if u != name))
    return _set_resident(state, name, phase=Phase.stopping, since=now, fresh=False)


def stopped(state: SchedState, name: str, now: float, measured: bool = True) -> SchedState:
    """The resident is gone and its memory is back."""
    r = state.residents[name]
    if measured and r.phase == Phase.stopping:
        state = replace(state, swap_out_s=_learn(state.swap_out_s, name, state.specs[name].swap_out_s,
                                                 now - r.since, state.params.swap_cost_alpha))
    return _set_resident(state, name, phase=Phase.stopped, since=now)


def load_failed(state: SchedState, name: str, now: float, error: str) -> SchedState:
    """The resident never became ready: the policy fails the jobs that waited for it."""
    return _set_resident(state, name, phase=Phase.stopped, since=now, error=error, failed_at=now, fresh=False)


def crashed(state: SchedState, name: str, now: float, error: str) -> SchedState:
    """A ready resident died under us: its running jobs are gone (the shell fails them)."""
    state = replace(state, running=tuple(j for j in state.running if j.resident != name))
    return _set_resident(state, name, phase=Phase.stopped, since=now, error=error, fresh=False)


# -- operator requests (accepted by `hub.gpu.controls` before they get here) ------------------


def pin(state: SchedState, resident: str, until: float, by: str, now: float) -> SchedState:
    """Hold `resident` until `until` (a new pin replaces the old one); unparks it."""
    pins = tuple(p for p in state.pins if p.resident != resident)
    return replace(state, pins=(*pins, Pin(resident, until, by, now)), parked=state.parked - {resident})


def unpin(state: SchedState, resident: str) -> SchedState:
    return replace(state, pins=tuple(p for p in state.pins if p.resident != resident))


def request_unload(state: SchedState, resident: str) -> SchedState:
    """The operator asked to unload `resident`: the policy does it when it is idle, and the idle
    rules do not bring it back until work asks for it (it is parked)."""
    unloads = state.unloads if resident in state.unloads else (*state.unloads, resident)
    return replace(state, unloads=unloads, parked=state.parked | {resident})


def unpark(state: SchedState, resident: str) -> SchedState:
    return replace(state, parked=state.parked - {resident},
                   unloads=tuple(u for u in state.unloads if u != resident))


def expect(state: SchedState, arrivals: Iterable[Expected]) -> SchedState:
    """Replace the scheduled arrivals seen ahead (the next fire time of each enabled schedule)."""
    return replace(state, expected=tuple(sorted(arrivals, key=lambda e: e.at)))
