"""What the peers do, as policies with the same signature as `decide`, for the same simulator.

- `fifo`: strict arrival order; swap whenever the next job needs another resident.
- `llama_swap`: static priority (class + job priority), FIFO within it, resident-first, no aging,
  no max wait; never evicts with requests in flight.
- `llama_swap_fairshare`: interactive first, then priority with a per-second aging increment; the
  best job goes next even if that costs a swap (no resident-first batching), LRU eviction.
- `ollama`: FIFO, keep-alive 5 min (idle residents are unloaded), evict on demand.
None of them knows about declared follow-ups, max waits or a default resident.
"""

from __future__ import annotations

from collections.abc import Callable

from hub.scheduler.model import Action, Dispatch, Job, Load, Phase, SchedState, Unload, WakeAt
from hub.scheduler.policy import decide, victims_for

Policy = Callable[[SchedState, float], list[Action]]


def _switch(state: SchedState, name: str, busy: set[str]) -> list[Action]:
    """Evict what is in the way once it has drained; load when memory allows."""
    if state.phase(name) != Phase.stopped:
        return []
    victims = victims_for(state, name)
    if victims is None:
        return []
    if not victims:
        return [Load(name)]
    return [Unload(v) for v in victims if not state.running_on(v) and v not in busy]


def _in_order(state: SchedState, order: list[Job], resident_first: bool) -> list[Action]:
    cap = {n: state.specs[n].concurrency - len(state.running_on(n))
           for n, r in state.residents.items() if r.phase == Phase.ready}
    acts: list[Action] = []
    head: Job | None = None
    if resident_first:
        for j in order:
            if cap.get(j.resident, 0) > 0:
                acts.append(Dispatch(j.id, j.resident))
                cap[j.resident] -= 1
        dispatched = {a.job_id for a in acts if isinstance(a, Dispatch)}
        left = [j for j in order if j.id not in dispatched]
        if left and not any(j.resident in cap for j in left):
            head = left[0]
    else:
        for j in order:
            if state.phase(j.resident) != Phase.ready:
                head = j
                break
            if cap.get(j.resident, 0) <= 0:
                break
            acts.append(Dispatch(j.id, j.resident))
            cap[j.resident] -= 1
    if head is not None:
        acts += _switch(state, head.resident, {a.resident for a in acts if isinstance(a, Dispatch)})
    return acts


def fifo(state: SchedState, now: float) -> list[Action]:
    order = sorted(state.queue, key=lambda j: (j.enqueued_at, j.id))
    return _in_order(state, order, resident_first=False)


def llama_swap(state: SchedState, now: float) -> list[Action]:
    p = state.params
    order = sorted(state.queue, key=lambda j: (-(p.rank(j.job_class) + j.priority), j.enqueued_at, j.id))
    return _in_order(state, order, resident_first=True)


def llama_swap_fairshare(state: SchedState, now: float, aging_per_s: float = 0.1) -> list[Action]:
    p = state.params

    def key(j: Job):
        eff = p.rank(j.job_class) + j.priority + aging_per_s * (now - j.enqueued_at)
        return (j.job_class != "interactive", -eff, j.enqueued_at, j.id)

    return _in_order(state, sorted(state.queue, key=key), resident_first=False)


def ollama(state: SchedState, now: float, keep_alive_s: float = 300.0) -> list[Action]:
    acts = fifo(state, now)
    wanted = {j.resident for j in state.queue}
    wakes = []
    for n, r in state.residents.items():
        if r.phase != Phase.ready or state.running_on(n) or n in wanted:
            continue
        idle_until = max(r.last_active, r.since) + keep_alive_s
        if now >= idle_until:
            acts.append(Unload(n, "keep-alive expired"))
        else:
            wakes.append(idle_until)
    if wakes:
        acts.append(WakeAt(min(wakes)))
    return acts


POLICIES: dict[str, Policy] = {
    "sovhub": decide,
    "llama_swap": llama_swap,
    "llama_swap_fairshare": llama_swap_fairshare,
    "fifo": fifo,
    "ollama": ollama,
}
