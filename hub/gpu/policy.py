"""The sovhub policy: `decide(state, now) -> actions`, a pure function (no I/O, no wall clock).

Rules, in the order they bind (hub/gpu/DESIGN.md has the invariants a change must keep):
0. a resident that came up serves its first wave before anything may freeze or unload it (the
   progress guarantee: no load is undone before it did the work it was made for);
1. a job that would cross its class's max wait (counting the swap it needs) forces that swap:
   nothing more is dispatched to the residents in its way, they drain and are evicted;
2. jobs are ranked by class, priority and age (aging); the best ones run when their resident is ready;
3. resident-first within a bounded lookahead: lower-ranked jobs for the ready resident may overtake a
   job that waits for a swap at most `lookahead` times (A A B B, not A B A B), and freely during the
   resident's minimum residency;
4. a declared follow-up (`then=`) keeps its place: it holds the resident (batches) or prefetches the
   next one (pipelines stay adjacent);
5. never evict with work in flight: drain first; a job running `busy_timeout_s` past its estimate
   marks the server hung, and only then is it force-stopped;
6. never exceed the memory budget: load only once the evicted residents' memory is back;
7. idle: return to the default resident after idling about as long as a wrong return would cost
   (one round trip of swaps: rent or buy);
8. after an interactive answer its resident is kept `conversation_s` for the next turn against
   lower classes. When bounds collide, they give way earliest deadline first, then by class;
9. a lease with checkpoints (a podcast's TTS chunks) that stands in the way of a higher-class job
   about to cross its max wait is asked to yield at its next checkpoint, once it has run
   `min_slice_s`; the rest of its work is queued again (no thrash: every slice does work).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from types import MappingProxyType

from hub.gpu.model import (
    Action,
    Dispatch,
    Fail,
    ForceUnload,
    Job,
    Load,
    Phase,
    PolicyParams,
    Reservation,
    SchedState,
    Unload,
    WakeAt,
    Yield,
)

LOADED = (Phase.starting, Phase.ready, Phase.stopping)
EPS_S = 1e-3  # time tolerance: floating-point noise must not decide (or stall) a swap


def effective_priority(job: Job | Reservation, params: PolicyParams, now: float) -> float:
    origin = job.age_origin if isinstance(job, Job) else job.rank_since
    return params.rank(job.job_class) + job.priority + params.aging_per_s * max(0.0, now - origin)


def ranked(jobs: Iterable[Job], params: PolicyParams, now: float) -> list[Job]:
    return sorted(jobs, key=lambda j: (-effective_priority(j, params, now), j.age_origin, j.enqueued_at, j.id))


def remaining(job: Job, now: float) -> float:
    return max(0.0, (now if job.started_at is None else job.started_at) + job.est_seconds - now)


def can_yield(job: Job, for_class: str | None, params: PolicyParams) -> bool:
    """Whether a running lease would yield to a job of `for_class`: it declared checkpoints and the
    waiting job is of a strictly higher class (a podcast gives way to a chat, never to its peers)."""
    return for_class is not None and job.checkpoint_s is not None and job.started_at is not None \
        and params.rank(for_class) > params.rank(job.job_class)


def drain_left(job: Job, params: PolicyParams, now: float, for_class: str | None = None) -> float:
    """Seconds until a running job releases its resident for a job of `for_class`: its remaining
    work, or, when it would yield to that class, the rest of its minimum slice plus one checkpoint."""
    rem = remaining(job, now)
    if not can_yield(job, for_class, params):
        return rem
    slice_left = max(0.0, (now if job.started_at is None else job.started_at) + params.min_slice_s - now)
    step = float(job.checkpoint_s or 0.0)
    return min(max(rem, step), slice_left + step)  # past its estimate, a chunk may still be under way


def hung(job: Job, params: PolicyParams, now: float) -> bool:
    return job.started_at is not None and now >= job.started_at + job.est_seconds + params.busy_timeout_s


def free_memory(state: SchedState) -> float:
    used = sum(state.specs[n].memory_gb for n, r in state.residents.items() if r.phase in LOADED)
    return state.params.memory_gb - state.params.reserve_gb - used


def excludes(state: SchedState, a: str, b: str) -> bool:
    """Whether residents `a` and `b` may never be loaded at the same time (either is exclusive)."""
    return a != b and (state.specs[a].exclusive or state.specs[b].exclusive)


def victims_for(state: SchedState, name: str, busy: set[str] | None = None) -> list[str] | None:
    """Ready residents to evict so `name` fits; [] if it fits now, None if it cannot fit yet.
    An exclusive resident (or any resident next to one) also needs every conflicting one gone."""
    must = [n for n, r in state.residents.items() if r.phase in LOADED and excludes(state, name, n)]
    need = state.specs[name].memory_gb - free_memory(state)
    if need <= 0 and not must:
        return []
    if any(r.phase in (Phase.stopping, Phase.starting) for r in state.residents.values()):
        return None  # memory is already on its way back (or committed): wait for that first
    if any(state.specs[n].pinned for n in must):
        return None
    busy = busy or set()
    out = sorted(must, key=lambda n: (n in busy, state.residents[n].last_active))
    need -= sum(state.specs[n].memory_gb for n in out)
    if need <= 0:
        return out
    cands = [n for n, r in state.residents.items()
             if r.phase == Phase.ready and n != name and n not in out and not state.specs[n].pinned]
    cands.sort(key=lambda n: (n in busy, state.residents[n].last_active))
    for n in cands:
        out.append(n)
        need -= state.specs[n].memory_gb
        if need <= 0:
            return out
    return None


def swap_eta(state: SchedState, name: str, now: float, for_class: str | None = None) -> float:
    """Seconds until `name` could be ready if we switched to it now (for a job of `for_class`:
    leases that would yield to it count until their next checkpoint, not their end)."""
    r = state.residents.get(name)
    if r and r.phase == Phase.ready:
        return 0.0
    if r and r.phase == Phase.starting:
        return max(0.0, r.since + state.cost_in(name) - now)
    eta = state.cost_in(name)
    if r and r.phase == Phase.stopped:
        # another resident is starting in the way: it must come up, drain and stop first
        no_room = state.specs[name].memory_gb > free_memory(state)
        for o in state.residents.values():
            if o.phase == Phase.starting and o.name != name and (no_room or excludes(state, name, o.name)):
                eta += max(0.0, o.since + state.cost_in(o.name) - now) + state.cost_out(o.name)
    if r and r.phase == Phase.stopping:
        return eta + max(0.0, r.since + state.cost_out(name) - now)
    victims = victims_for(state, name) or []
    if victims:
        drain = max((drain_left(j, state.params, now, for_class) for v in victims for j in state.running_on(v)),
                    default=0.0)
        eta += drain + max(state.cost_out(v) for v in victims)
    for other in state.residents.values():  # memory still coming back from an earlier stop
        if other.phase == Phase.stopping:
            eta += max(0.0, other.since + state.cost_out(other.name) - now)
    return eta


def deadline(job: Job, state: SchedState) -> float:
    return job.enqueued_at + state.params.max_wait(job.job_class)


def degrade_key(job: Job, state: SchedState) -> tuple[float, float, float, str]:
    """The one order in which bounds give way when not all can hold: earliest deadline first, then
    the higher class (interactive, skill, scheduled), then the older request."""
    return (deadline(job, state), -state.params.rank(job.job_class), job.enqueued_at, job.id)


def committed(state: SchedState, name: str) -> bool:
    """A resident that became ready and has not had a dispatch since: it was loaded for work."""
    r = state.residents.get(name)
    return r is not None and r.phase == Phase.ready and r.fresh


def _first_wave(state: SchedState, order: list[Job], cap: dict[str, int]) -> list[Job]:
    """Progress guarantee: a resident that came up is committed to the work that waits for it.
    Its best-ranked jobs (up to its concurrency) are dispatched before any rule may freeze or unload
    it, so no resident is loaded and unloaded again without serving a job in between, whatever the
    bounds say. Without this, two overdue jobs for different residents take the GPU from each other
    forever (each load makes the other job the most urgent)."""
    out: list[Job] = []
    # earliest deadline first: the job whose bound forced the load is served by it, not a better-aged one
    for j in sorted(order, key=lambda j: degrade_key(j, state)):
        if committed(state, j.resident) and cap.get(j.resident, 0) > 0:
            out.append(j)
            cap[j.resident] -= 1
    return out


def urgent_at(job: Job, state: SchedState, now: float) -> float:
    """When this job must force its swap so it still starts within its max wait."""
    return deadline(job, state) - swap_eta(state, job.resident, now, job.job_class) - state.params.urgency_margin_s


def next_drain(state: SchedState, job: Job, queue: list[Job], now: float) -> float:
    """The longest work a dispatch could still add in `job`'s way: a queued job of its class or
    lower for a ready resident it must evict. Dispatching it would push the swap back by that much,
    so the swap is forced that much earlier (a dispatch never makes a waiting job late)."""
    victims = victims_for(state, job.resident) or []
    if not victims:
        return 0.0
    p = state.params
    return max((drain_left(replace(x, started_at=now), p, now, job.job_class) for x in queue
                if x.resident in victims and p.rank(x.job_class) < p.rank(job.job_class)), default=0.0)


def failed_reason(state: SchedState, job: Job) -> str | None:
    if job.resident not in state.specs:
        return f"unknown resident {job.resident!r} (known: {', '.join(sorted(state.specs))})"
    r = state.residents.get(job.resident)
    if r and r.phase == Phase.stopped and r.failed_at is not None and job.enqueued_at <= r.failed_at:
        return f"resident {job.resident} failed to start: {r.error}"
    return None


def overtakes(job: Job, blocker: Job, params: PolicyParams) -> bool:
    """Whether dispatching `job` past `blocker` uses up one of the blocker's lookahead places.
    A pipeline's next step on the same resident continues its lease, except against a higher class."""
    return not job.continues or params.rank(blocker.job_class) > params.rank(job.job_class)


def cannot_wait_for_round_trip(state: SchedState, job: Job, blocker: Job, now: float) -> bool:
    """Whether `job` (for a ready resident) would cross its max wait if we left now for `blocker`:
    the excursion (the swap, the blocker's work, its stop) plus the reload of `job`'s resident does
    not fit its slack. Leaving anyway would force a return before the excursion did any work, so the
    job is served first; the blocker's own max wait still binds (it freezes the resident)."""
    trip = swap_eta(state, blocker.resident, now) + blocker.est_seconds + state.cost_out(blocker.resident) \
        + state.cost_in(job.resident)
    return deadline(job, state) - now - state.params.urgency_margin_s < trip


def in_min_residency(state: SchedState, name: str, now: float) -> bool:
    r = state.residents[name]
    return r.phase == Phase.ready and now - r.since < state.params.min_residency_s


def with_pins(state: SchedState, now: float) -> SchedState:
    """The state as the rules see it: a resident with a live operator pin is pinned (never a victim)."""
    live = {p.resident for p in state.pins if p.until > now and p.resident in state.specs}
    if not live:
        return state
    specs = {n: (replace(s, pinned=True) if n in live and not s.pinned else s) for n, s in state.specs.items()}
    return replace(state, specs=MappingProxyType(specs))


def decide(state: SchedState, now: float) -> list[Action]:
    """Everything the shell should do now, given the state; plus when to ask again."""
    p = state.params
    acts: list[Action] = []
    wakes: list[float] = [pin.until for pin in state.pins if pin.until > now]
    state = with_pins(state, now)
    queue: list[Job] = []
    for j in state.queue:
        why = failed_reason(state, j)
        if why:
            acts.append(Fail(j.id, why))
        else:
            queue.append(j)
    live = [r for r in state.reservations if r.expires_at > now and r.resident in state.specs]
    wakes += [r.expires_at for r in live]
    holds = [r for r in live if not r.conversation]  # declared follow-ups: they hold and prefetch
    talks = [r for r in live if r.conversation and state.phase(r.resident) == Phase.ready]
    order = ranked(queue, p, now)
    cap = {n: state.specs[n].concurrency - len(state.running_on(n))
           for n, r in state.residents.items() if r.phase == Phase.ready}

    # 0. progress: a resident loaded for work serves its first wave before anything may take it away
    first_wave = _first_wave(state, order, cap)
    acts += [Dispatch(j.id, j.resident) for j in first_wave]
    done = {j.id for j in first_wave}

    # 1. the most pressing job that waits for a swap and is about to cross its max wait
    waiting = [j for j in order if state.phase(j.resident) != Phase.ready]
    forced: Job | None = None
    for j in sorted(waiting, key=lambda j: degrade_key(j, state)):
        if state.phase(j.resident) == Phase.starting:
            continue
        t = urgent_at(j, state, now) - next_drain(state, j, queue, now)
        if t <= now + EPS_S:  # a tolerance: while its resident drains, urgent_at moves with now
            forced = j
            break
        wakes.append(t)
    frozen: set[str] = set()  # residents that take no new work (in the way of a forced swap)
    if forced is not None:
        frozen = set(victims_for(state, forced.resident) or [])
        acts += _yields(state, frozen, forced, now, wakes)

    # 2-3. dispatch in rank order; bounded overtaking of the best job that waits for a swap
    blocker: Job | None = None
    n_over = 0
    for j in order:
        r = j.resident
        ph = state.phase(r)
        if j.id in done:
            continue
        if ph != Phase.ready:
            if blocker is None and ph in (Phase.stopped, Phase.stopping):
                blocker = j
            continue
        if cap.get(r, 0) <= 0 or r in frozen:
            continue
        if blocker is not None and overtakes(j, blocker, p) and not in_min_residency(state, r, now):
            if blocker.overtaken + n_over >= p.lookahead and not cannot_wait_for_round_trip(state, j, blocker, now):
                continue
            n_over += 1
        acts.append(Dispatch(j.id, r))
        cap[r] -= 1

    # 4-6. switch residents (a job dispatched just now keeps its resident busy)
    busy = {a.resident for a in acts if isinstance(a, Dispatch)}
    acts += _operator_unloads(state, queue, busy)
    if forced is not None:
        acts += _switch_to(state, forced.resident, now, f"{forced.id} near its max wait", wakes, busy)
    elif blocker is not None:
        target, why = blocker.resident, f"{blocker.id} waits"
        # a declared follow-up that outranks the blocker goes first: the pipeline stays adjacent
        pre = max((h for h in holds if state.phase(h.resident) in (Phase.stopped, Phase.stopping)),
                  key=lambda h: effective_priority(h, p, now), default=None)
        if pre is not None and effective_priority(pre, p, now) > effective_priority(blocker, p, now):
            target, why = pre.resident, f"follow-up of {pre.owner}"
        elif (alt := _committed_target(state, blocker.resident, order, holds, now)) is not None:
            target, why = alt.resident, f"{alt.id} waits (finishing the swap under way)"
        else:
            alt = _default_last(state, blocker, order, now)
            if alt is not None:
                target, why = alt.resident, f"{alt.id} waits (the default {blocker.resident} goes last)"
        if (late := _late_after_visit(state, target, order, now)) is not None:
            target, why = late.resident, f"{late.id} could not wait for a visit to {target}"
        victims = victims_for(state, target)
        if victims is not None:
            dispatched = {a.job_id for a in acts if isinstance(a, Dispatch)}
            stay = _victims_with_work(state, victims, blocker, n_over, order, dispatched, holds, now, wakes) \
                or any(h.resident in victims and p.rank(h.job_class) > p.rank(blocker.job_class)
                       and _excursion_breaks_next_turn(state, h, blocker) for h in talks)
            if not stay:
                acts += _switch_to(state, target, now, why, wakes, busy)
    else:
        # prefetch for a declared follow-up when nothing else waits for a swap
        pre = next((h for h in sorted(holds, key=lambda h: h.rank_since)
                    if state.phase(h.resident) in (Phase.stopped, Phase.stopping)), None)
        if pre is not None and not queue:
            victims = victims_for(state, pre.resident)
            if victims is not None and not any(state.running_on(v) or v in busy for v in victims) \
                    and not any(h.resident in victims for h in holds):
                acts += _switch_to(state, pre.resident, now, f"follow-up of {pre.owner}", wakes, busy)
        elif not queue and not holds and not talks and not state.running:
            # idle: a scheduled job due soon gets its resident first, then TTLs, then the default
            keep, pre_acts = _preload(state, now, wakes)
            acts += pre_acts
            if not pre_acts:
                acts += _ttl_unloads(state, now, wakes, keep)
            if not pre_acts and not keep and not any(isinstance(a, Unload) for a in acts):
                acts += _return_to_default(state, now, wakes)

    future = [w for w in wakes if w > now]
    if future:
        acts.append(WakeAt(max(min(future), now + EPS_S)))  # never a Zeno run of wakes
    return acts


def _yields(state: SchedState, victims: set[str], forced: Job, now: float, wakes: list[float]) -> list[Action]:
    """Leases with checkpoints in the way of a forced swap for a higher class are asked to yield at
    their next checkpoint, once they ran their minimum slice (a lease yields at most once per
    `min_slice_s`, so every slice does work and a stream of chats cannot thrash it)."""
    p = state.params
    out: list[Action] = []
    # waiting for the estimated end of what runs still keeps the bound: no yield (a yield costs swaps)
    spare = deadline(forced, state) - p.urgency_margin_s - now - swap_eta(state, forced.resident, now)
    if spare > EPS_S:
        wakes.append(now + spare)
        return out
    for v in sorted(victims):
        for j in state.running_on(v):
            if j.yield_asked or not can_yield(j, forced.job_class, p):
                continue
            at = (now if j.started_at is None else j.started_at) + p.min_slice_s
            if now + EPS_S >= at:
                out.append(Yield(j.id, f"{forced.id} near its max wait"))
            else:
                wakes.append(at)
    return out


def _operator_unloads(state: SchedState, queue: list[Job], busy: set[str]) -> list[Action]:
    """An accepted operator unload is carried out once the resident is ready and idle; work that
    arrived for it since wins (the request is dropped when that work is submitted)."""
    wanted = {j.resident for j in queue}
    return [Unload(n, "operator request") for n in state.unloads
            if state.phase(n) == Phase.ready and not state.running_on(n) and n not in busy
            and n not in wanted and not state.specs[n].pinned]


def preload_lead(state: SchedState, name: str, now: float) -> float:
    """How long before a scheduled arrival the preload of `name` starts: the swap it needs from here
    plus the margin."""
    return swap_eta(state, name, now) + state.params.preload_margin_s


def _preload(state: SchedState, now: float, wakes: list[float]) -> tuple[set[str], list[Action]]:
    """Schedule-aware preloading, only when the GPU is idle (nothing queued or running, no
    conversation or follow-up held: never in the middle of an active chat). The next scheduled
    arrival whose lead time has come gets its resident loaded (or kept); a later one sets a wake-up.
    Returns the residents to keep (no TTL or idle return) and the actions."""
    keep: set[str] = set()
    for e in state.expected:
        if e.resident not in state.specs or e.at + state.params.preload_margin_s < now:
            continue  # stale: the schedule fired (its job is queued or done) or was missed
        start = e.at - preload_lead(state, e.resident, now)
        if now + EPS_S < start:
            wakes.append(start)
            break
        ph = state.phase(e.resident)
        if ph in (Phase.ready, Phase.starting):
            keep.add(e.resident)
            wakes.append(e.at + state.params.preload_margin_s)
            continue
        if ph == Phase.stopped:
            acts = _switch_to(state, e.resident, now, f"preload for {e.label or 'a schedule'} at {e.at:.0f}",
                              wakes, set())
            return keep, acts
        break
    return keep, []


def _ttl_unloads(state: SchedState, now: float, wakes: list[float], keep: set[str]) -> list[Action]:
    """Per-resident `ttl_s`: an idle resident (nothing waits, nothing runs, not pinned) is unloaded
    after its TTL; the idle return brings the default back (a default with a TTL stays out until
    work asks for it)."""
    acts: list[Action] = []
    for n, r in state.residents.items():
        ttl = state.specs[n].ttl_s
        if ttl is None or r.phase != Phase.ready or state.specs[n].pinned or n in keep:
            continue
        due = max(r.last_active, r.since) + ttl
        if now + EPS_S >= due:
            acts.append(Unload(n, f"idle {now - max(r.last_active, r.since):.0f}s past its ttl of {ttl:.0f}s"))
        else:
            wakes.append(due)
    return acts


def _excursion_breaks_next_turn(state: SchedState, hold: Reservation, blocker: Job) -> bool:
    """Whether leaving `hold`'s resident for `blocker` now would make the conversation's next turn
    miss its bound if it came at once: stop, load the other, its work, stop it, load back. Only
    then does the conversation keep its resident (with swaps of seconds, nothing is held)."""
    trip = state.cost_out(hold.resident) + state.cost_in(blocker.resident) + blocker.est_seconds \
        + state.cost_out(blocker.resident) + state.cost_in(hold.resident)
    return trip > state.params.max_wait(hold.job_class) - state.params.urgency_margin_s


def _default_last(state: SchedState, blocker: Job, order: list[Job], now: float) -> Job | None:
    """Cost-aware order of visits: when the default resident and another one both have work of the
    same class waiting, visit the other first. Idle time brings the default back anyway, so ending
    on it saves that return swap (A: img, llm instead of llm, img, llm). Max wait still binds."""
    p = state.params
    if blocker.resident != state.default:
        return None
    base = p.rank(blocker.job_class) + blocker.priority
    return next((j for j in order if j.resident != blocker.resident
                 and state.phase(j.resident) in (Phase.stopped, Phase.stopping)
                 and not just_evicted(state, j.resident, now)
                 and p.rank(j.job_class) + j.priority >= base), None)


def just_evicted(state: SchedState, name: str, now: float) -> bool:
    """Stopped moments ago to make room for another (not a failed start, not a crash): loading it
    straight back would undo the swap under way."""
    r = state.residents[name]
    return r.phase == Phase.stopped and r.error is None and r.since > r.last_active \
        and now - r.since < state.params.urgency_margin_s


def _committed_target(state: SchedState, evicted: str, order: list[Job], holds: list[Reservation],
                      now: float) -> Job | None:
    """A swap once begun is finished when the waiting jobs can afford it: the memory a resident just
    gave up goes to the job it was freed for, not straight back to it because one of its own jobs
    came during the stop (a load back and later the same swap again). Only when the other
    resident's work is known in full (no declared follow-up on it) and the evicted resident's most
    urgent job can still wait for that load, that work, its stop and the reload within its max wait."""
    if not just_evicted(state, evicted, now):
        return None
    alt = next((j for j in order if j.resident != evicted and state.phase(j.resident) == Phase.stopped
                and not just_evicted(state, j.resident, now)), None)
    if alt is None:
        return None
    theirs = [j for j in order if j.resident == alt.resident]
    if any(j.then == alt.resident for j in theirs) or any(h.resident == alt.resident for h in holds):
        return None  # a batch of unknown length: it would be cut short and cost the swap again
    work = sum(j.est_seconds for j in theirs) / max(1, state.specs[alt.resident].concurrency)
    detour = state.cost_in(alt.resident) + work + state.cost_out(alt.resident) + state.cost_in(evicted)
    first = min(deadline(j, state) for j in order if j.resident == evicted)
    return alt if first - now - state.params.urgency_margin_s >= detour else None


def first_wave_work(state: SchedState, name: str, order: list[Job], now: float, for_class: str) -> float:
    """What a visit to `name` is committed to before it may be left for a job of `for_class`: its
    first wave (rule 0), each job until its end, or until its first allowed checkpoint if it would
    yield to that class."""
    wave = [j for j in order if j.resident == name][:max(1, state.specs[name].concurrency)]
    return max((drain_left(replace(j, started_at=now), state.params, now, for_class) for j in wave), default=0.0)


def _late_after_visit(state: SchedState, target: str, order: list[Job], now: float) -> Job | None:
    """The most pressing job that would cross its max wait if we went to `target` first: even
    leaving `target` as soon as it is up (its load, its stop, then this job's load) is too late.
    Such a job goes first; `urgent_at` alone only sees the swap it needs from here."""
    via = swap_eta(state, target, now) + state.cost_out(target)
    late = [j for j in order if j.resident != target
            and state.phase(j.resident) in (Phase.stopped, Phase.stopping)
            and deadline(j, state) - now - state.params.urgency_margin_s
            < via + first_wave_work(state, target, order, now, j.job_class) + state.cost_in(j.resident)]
    return min(late, key=lambda j: deadline(j, state), default=None)


def _victims_with_work(state, victims, blocker, n_over, order, dispatched, holds, now, wakes) -> bool:
    """Whether any resident in the way still has work it may do before the swap."""
    p = state.params
    bi = order.index(blocker)
    for v in victims:
        if any(h.resident == v and (p.rank(h.job_class) >= p.rank(blocker.job_class)
                                    or blocker.overtaken + n_over < p.lookahead) for h in holds):
            return True
        minres = in_min_residency(state, v, now)
        for i, j in enumerate(order):
            if j.resident != v or j.id in dispatched:
                continue
            if i < bi or minres or not overtakes(j, blocker, p) \
                    or blocker.overtaken + n_over < p.lookahead:
                return True
        if minres and state.running_on(v):
            wakes.append(state.residents[v].since + p.min_residency_s)
    return False


def _switch_to(state: SchedState, name: str, now: float, reason: str, wakes: list[float],
               busy: set[str]) -> list[Action]:
    """Drain and evict what is in the way of `name`, then load it once memory allows."""
    r = state.residents[name]
    if r.phase != Phase.stopped:
        return []
    victims = victims_for(state, name)
    if victims is None:
        return []
    if not victims:
        return [Load(name, reason)]
    acts: list[Action] = []
    waiting_for = {j.resident for j in state.queue}
    for v in victims:
        running = state.running_on(v)
        if v in busy or (committed(state, v) and v in waiting_for):
            continue  # never take a resident away from the work it was just loaded for
        if not running:
            acts.append(Unload(v, f"make room for {name}: {reason}"))
        elif all(hung(j, state.params, now) for j in running):
            acts.append(ForceUnload(v, tuple(j.id for j in running),
                                    f"{v} busy past its timeout while {name} waits"))
        else:
            wakes.append(min(j.started_at + j.est_seconds + state.params.busy_timeout_s
                             for j in running if not hung(j, state.params, now)))
    return acts


def round_trip(state: SchedState, here: str, default: str) -> float:
    """What a return to the default costs if it proves wrong: stop here, start the default, then
    stop it and start this one again for the next request that wants it (the rent-or-buy price)."""
    return state.cost_out(here) + state.cost_in(default) + state.cost_out(default) + state.cost_in(here)


def _return_to_default(state: SchedState, now: float, wakes: list[float]) -> list[Action]:
    """Rent or buy: idle on a non-default resident for about what a wrong return would cost (one
    round trip of swaps), then go back to the default. Deterministic ski rental: never more than
    twice the cost of the better choice in hindsight, whichever request comes next."""
    d = state.default
    if d is None or state.phase(d) != Phase.stopped or d in state.parked:
        return []
    rd = state.residents[d]
    ttl = state.specs[d].ttl_s
    if ttl is not None and now >= max(rd.last_active, rd.since) + ttl and rd.phase == Phase.stopped \
            and rd.failed_at is None and rd.since > rd.last_active:
        return []  # a default with a TTL that went idle stays out until work asks for it
    if rd.failed_at is not None and now < rd.failed_at + state.cost_in(d):
        wakes.append(rd.failed_at + state.cost_in(d))  # back off before retrying a failed start
        return []
    victims = victims_for(state, d)
    if victims is None:
        return []
    if not victims:
        return [Load(d, "default resident")]
    idle_since = max(state.residents[v].last_active for v in victims)
    idle_since = max(idle_since, max(state.residents[v].since for v in victims))
    due = idle_since + state.params.rent_factor * max(round_trip(state, v, d) for v in victims)
    if now < due:
        wakes.append(due)
        return []
    return [Unload(v, f"idle {now - idle_since:.0f}s: return to default {d}") for v in victims]


def eta_by_job(state: SchedState, now: float) -> dict[str, float]:
    """Rough seconds until each queued job gets its lease (queue position and swap costs)."""
    out: dict[str, float] = {}
    ahead: dict[str, float] = {}
    for j in ranked(state.queue, state.params, now):
        spec = state.specs.get(j.resident)
        if spec is None:
            continue
        base = swap_eta(state, j.resident, now)
        if base == 0.0:
            busy = min((remaining(x, now) for x in state.running_on(j.resident)), default=0.0)
            if len(state.running_on(j.resident)) < spec.concurrency:
                busy = 0.0
            base = busy
        out[j.id] = base + ahead.get(j.resident, 0.0) / max(1, spec.concurrency)
        ahead[j.resident] = ahead.get(j.resident, 0.0) + j.est_seconds
    return out
