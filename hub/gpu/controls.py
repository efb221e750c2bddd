"""The operator's controls as requests to the policy: load, unload, pin, and the queue limit.

Each check is a pure function of (state, now) that returns why a request is refused, or None when
the policy accepts it; the accepted request then enters the state through a reducer
(`hub.gpu.reducers`) and `decide` carries it out by its own rules. Nothing here writes
scheduler state or talks to a driver: the runtime and the simulator call these the same way.
"""

from __future__ import annotations

from hub.gpu.model import Job, Phase, SchedState
from hub.gpu.policy import eta_by_job, excludes, ranked


def _known(state: SchedState, name: str) -> str | None:
    if name not in state.specs:
        return f"unknown resident {name!r} (configured: {', '.join(sorted(state.specs))})"
    return None


def _until(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def blocking_pin(state: SchedState, name: str, now: float) -> str | None:
    """Why `name` cannot be loaded while another resident is pinned next to it (or None)."""
    budget = state.params.memory_gb - state.params.reserve_gb
    held = [o for o in state.specs if o != name and state.phase(o) != Phase.stopped
            and (state.pin_of(o, now) is not None or state.specs[o].pinned)]
    too_big = state.specs[name].memory_gb + sum(state.specs[o].memory_gb for o in held) > budget
    for other in held:
        pin = state.pin_of(other, now)
        if excludes(state, name, other) or too_big:
            who = f"pinned by {pin.by} for {_until(pin.until - now)} more" if pin else "pinned in the config"
            return f"{other} is {who} and cannot share the GPU with {name}: unpin it first"
    return None


def check_load(state: SchedState, name: str, now: float) -> str | None:
    """Why a request to load `name` now is refused (None: the policy will load it as a job of the
    interactive class, so every bound and the progress rules apply to it like to a chat turn)."""
    if why := _known(state, name):
        return why
    phase = state.phase(name)
    if phase == Phase.ready:
        return f"{name} is already loaded"
    if phase == Phase.starting:
        return f"{name} is already starting"
    return blocking_pin(state, name, now)


def check_unload(state: SchedState, name: str, now: float) -> str | None:
    """Why a request to unload `name` is refused (None: the policy unloads it once it is idle)."""
    if why := _known(state, name):
        return why
    pin = state.pin_of(name, now)  # first: a pinned resident may still be on its way in
    if pin is not None:
        return f"{name} is pinned by {pin.by} for {_until(pin.until - now)} more: unpin it first"
    if state.specs[name].pinned:
        return f"{name} is pinned in the config"
    phase = state.phase(name)
    if phase in (Phase.stopped, Phase.stopping):
        return f"{name} is not loaded"
    if phase == Phase.starting:
        return f"{name} is starting: ask again once it is up"
    running = state.running_on(name)
    if running:
        jobs = ", ".join(j.owner or j.id for j in running)
        return f"a job is running on {name} ({jobs}): cancel it or wait for it"
    waiting = [j for j in state.queue if j.resident == name]
    if waiting:
        return f"{len(waiting)} job(s) wait for {name} ({', '.join(j.owner or j.id for j in waiting[:3])})"
    return None


def check_pin(state: SchedState, name: str, seconds: float, now: float) -> str | None:
    """Why a pin of `name` for `seconds` is refused. Pins are bounded by `pin_max_s`: that bound is
    what a pin may add to the wait of a job for another resident (DESIGN.md)."""
    if why := _known(state, name):
        return why
    if not seconds > 0:
        return "a pin needs a positive duration (e.g. --for 30m)"
    if seconds > state.params.pin_max_s:
        return f"a pin may last at most {_until(state.params.pin_max_s)} (asked {_until(seconds)})"
    return blocking_pin(state, name, now)


def admit(state: SchedState, job: Job, now: float) -> str | None:
    """The queue limit: why a lease above the resident's `queue_limit` is refused (None: queued).
    The reason carries the ETA of the last job already waiting, so the caller knows when to retry."""
    spec = state.specs.get(job.resident)
    if spec is None or spec.queue_limit is None:
        return None
    waiting = [j for j in ranked(state.queue, state.params, now) if j.resident == job.resident]
    if len(waiting) < spec.queue_limit:
        return None
    etas = eta_by_job(state, now)
    eta = max((etas.get(j.id, 0.0) + j.est_seconds for j in waiting), default=0.0)
    return f"{job.resident} has {len(waiting)} jobs waiting (its queue limit): retry in about {eta:.0f} s"


def retry_after(reason: str) -> float | None:
    """The ETA in a queue-limit refusal, for a Retry-After header."""
    tail = reason.rsplit("retry in about ", 1)
    return float(tail[1].split()[0]) if len(tail) == 2 else None
