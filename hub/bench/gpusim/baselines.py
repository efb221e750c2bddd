"""What the peers do, as policies with the same signature as `decide`, for the same simulator.

- `fifo`: strict arrival order; swap whenever the next job needs another resident.
- `llama_swap`: the merged FIFO scheduler of llama-swap (`internal/router/scheduler/fifo.go`):
  priority per *model* (not per job class; none configured, as on a fresh install, so arrival
  order), a request for a ready model is served at once (the fast path), a swap starts as soon as
  nothing it would evict has requests in flight, the waiters of a finished swap are served first,
  and a model is never evicted with requests in flight. A request for a loaded model already at
  its concurrency limit is answered 429 at once (`llama_swap.admit`); the simulated client
  retries with exponential back-off (1, 2, 4, 8, 16, then every 30 s), and its wait counts from
  its first try. A request for a model that is not loaded waits in the queue for the swap.
  No aging, no max wait: a busy model can starve a queued swap.
- `ollama`: Ollama's scheduler with the default model kept loaded (`keep_alive=-1` on it, as a
  user of this box would set it) and the 5 min keep-alive on the others: one pending request at a
  time in arrival order (head-of-line), evict on demand once the evicted runner is idle.
The unmerged llama-swap "fairshare" proposal is not modelled: it makes the same swap decisions as
its FIFO (the loaded model first) and answers max wait with 429 instead of forcing a swap.
None of them knows about declared follow-ups, max waits or returning to a default resident.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from hub.gpu.model import Action, Dispatch, Job, Load, Phase, SchedState, Unload, WakeAt
from hub.gpu.policy import decide, victims_for

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


def _cap(state: SchedState) -> dict[str, int]:
    return {n: state.specs[n].concurrency - len(state.running_on(n))
            for n, r in state.residents.items() if r.phase == Phase.ready}


def fifo(state: SchedState, now: float) -> list[Action]:
    """Strict arrival order: the head of the queue blocks everything behind it."""
    cap = _cap(state)
    acts: list[Action] = []
    for j in sorted(state.queue, key=lambda j: (j.enqueued_at, j.id)):
        if state.phase(j.resident) != Phase.ready:
            return acts + _switch(state, j.resident, {a.resident for a in acts if isinstance(a, Dispatch)})
        if cap.get(j.resident, 0) <= 0:
            break
        acts.append(Dispatch(j.id, j.resident))
        cap[j.resident] -= 1
    return acts


def llama_swap(state: SchedState, now: float, priority: Mapping[str, float] | None = None) -> list[Action]:
    prio = priority or {}
    order = sorted(state.queue, key=lambda j: (-prio.get(j.resident, 0.0), j.enqueued_at, j.id))
    cap = _cap(state)
    acts: list[Action] = []

    def grant(j: Job) -> None:
        acts.append(Dispatch(j.id, j.resident))
        cap[j.resident] -= 1

    # OnSwapDone: the waiters of a swap that just finished are served first (up to the limit)
    for j in order:
        r = state.residents.get(j.resident)
        if r is not None and r.phase == Phase.ready and r.fresh and cap.get(j.resident, 0) > 0:
            grant(j)
    busy = {a.resident for a in acts if isinstance(a, Dispatch)}
    # drainQueue: the first queued request for an unloaded model starts its swap when nothing it
    # would evict is busy and no other swap is under way (a swap in progress keeps its waiters)
    evicting: set[str] = set()
    for j in order:
        if state.phase(j.resident) != Phase.stopped or j.id in {a.job_id for a in acts}:
            continue
        victims = victims_for(state, j.resident)
        if victims is not None and not any(state.running_on(v) or v in busy for v in victims):
            acts += _switch(state, j.resident, busy)
            evicting = set(victims)
        break  # one swap at a time on an exclusive pool: the others collide and stay queued
    # fast path: a request for a ready model that no swap is evicting is served at once
    for j in order:
        if state.phase(j.resident) == Phase.ready and j.resident not in evicting \
                and cap.get(j.resident, 0) > 0 and j.id not in {a.job_id for a in acts}:
            grant(j)
    return acts


def _llama_swap_admits(state: SchedState, job: Job, now: float) -> bool:
    """llama-swap's 429: a loaded model with every slot in use refuses the request at once."""
    if state.phase(job.resident) != Phase.ready:
        return True
    return len(state.running_on(job.resident)) < state.specs[job.resident].concurrency


llama_swap.admit = _llama_swap_admits  # type: ignore[attr-defined]


def ollama(state: SchedState, now: float, keep_alive_s: float = 300.0) -> list[Action]:
    acts = fifo(state, now)
    wanted = {j.resident for j in state.queue}
    wakes = []
    for n, r in state.residents.items():
        if r.phase != Phase.ready or state.running_on(n) or n in wanted or state.specs[n].default:
            continue  # the default model has keep_alive=-1: never unloaded by the timer
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
    "ollama": ollama,
    "fifo": fifo,
}
