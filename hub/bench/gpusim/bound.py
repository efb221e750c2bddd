"""An offline lower bound on the loads any schedule needs for a trace, so figures read as "x times
the limit".

Proof sketch. Take any schedule that starts every step within its class's max wait, on a pool
where every pair of residents excludes the other (the GB10). Step j of a session can start no
earlier than `lo_j` (its session's arrival, plus the actual length and think time of the steps
before it) and no later than `hi_j` (the latest start of the step before it, plus its length and
think time, plus j's own max wait): whatever the schedule did earlier, j's request comes in that
window and j starts within its bound after it. At the moment j starts, its resident is loaded.
So for two steps whose windows do not overlap (`hi_k < lo_j`) and whose residents differ, the
schedule loads `r_j` at some moment in between. Along a chain of pairwise disjoint windows,
those moments are distinct; every change of resident along the chain is a load, plus one if the
chain starts away from the resident loaded at t=0. The longest such chain (a dynamic programme
over windows sorted by start) is a lower bound. It ignores load times, concurrency and every
overlapping request, so it is loose; it is never above the true optimum. Turns of `auto` rooms and
cancellable requests are left out (a schedule may serve or lose them without the GPU).

`unavoidable_steps` is the per-step counterpart: the steps that *no* schedule can start within
their bound while it keeps the bounds of the steps before them and of one other step. Proof
sketch. Let X be a step that cannot yield (one chunk) on resident r', with window [lo_X, hi_X] as
above and true length d_X. Any schedule that keeps X's bound starts X at some s in [lo_X, hi_X]
and runs it to s + d_X >= lo_X + d_X, so r' is loaded during all of [hi_X, lo_X + d_X]; on a pool
where every pair of residents excludes the other, another resident r can be ready only after X
ended, r' stopped and r started: not before lo_X + d_X + unload(r') + load(r) (true times). A
step j on r != r' whose window [lo_j, hi_j] lies in [hi_X, that moment) must start inside it to
keep its bound, when r cannot be ready. So every schedule misses j's bound or X's (or one before
them): such a violation is one the lower-bound schedule makes too. The test is sound, not
complete: it proves only these violations unavoidable, so `avoidable` is an upper bound.
"""

from __future__ import annotations

import heapq

from hub.bench.gpusim.traces import Trace
from hub.gpu.model import PolicyParams


def step_windows(trace: Trace, params: PolicyParams) -> list[tuple[str, int, float, float, str, float, int]]:
    """(session, step, earliest start, latest start within the bounds, resident, true length, chunks)
    of every step that must use the GPU (an `auto` turn may go to the cloud, a cancelled one may never run)."""
    out = []
    for s in trace.sessions:
        if s.auto or s.cancel_after_s is not None:
            continue
        lo = hi = s.arrival
        for k, step in enumerate(s.steps):
            if k:
                prev = s.steps[k - 1]
                lo += prev.actual_s + step.think_s
                hi += prev.actual_s + step.think_s
            else:
                lo += step.think_s
                hi += step.think_s
            hi += params.max_wait(s.job_class)
            out.append((s.id, k, lo, hi, step.resident, step.actual_s, step.chunks))
    return out


def windows(trace: Trace, params: PolicyParams) -> list[tuple[float, float, str]]:
    """(earliest start, latest start within the bounds, resident) of every step that must use the GPU."""
    return [(lo, hi, r) for _, _, lo, hi, r, _, _ in step_windows(trace, params)]


def all_exclusive(trace: Trace, params: PolicyParams) -> bool:
    """Whether no two residents can ever be loaded together (the bound's premise)."""
    specs = trace.residents
    budget = params.memory_gb - params.reserve_gb
    return all(a.exclusive or b.exclusive or a.memory_gb + b.memory_gb > budget
               for i, a in enumerate(specs) for b in specs[i + 1:])


def lower_bound_loads(trace: Trace, params: PolicyParams | None = None) -> int | None:
    """The fewest loads any schedule that keeps every bound needs (None if residents may share)."""
    params = params or PolicyParams()
    if not all_exclusive(trace, params):
        return None
    initial = next((s.name for s in trace.residents if s.default), None)
    best_by: dict[str, int] = {}  # per resident: the longest chain ending in a window already closed
    pending: list[tuple[float, int, str]] = []  # (window end, chain value, resident), not yet closed
    top = 0
    for lo, hi, r in sorted(windows(trace, params)):
        while pending and pending[0][0] < lo:
            _, v, rr = heapq.heappop(pending)
            best_by[rr] = max(best_by.get(rr, 0), v)
        v = int(r != initial)
        for rr, b in best_by.items():
            v = max(v, b + (rr != r))
        heapq.heappush(pending, (hi, v, r))
        top = max(top, v)
    return top


def unavoidable_steps(trace: Trace, params: PolicyParams | None = None) -> set[tuple[str, int]]:
    """Steps no schedule can start within their bound while keeping another step's (proof above).
    Empty when residents may share the pool (the premise fails)."""
    params = params or PolicyParams()
    if not all_exclusive(trace, params):
        return set()
    steps = step_windows(trace, params)
    # must-run stretches of steps that cannot yield: [hi_X, end of X + its stop), resident r'
    blocks = [(hi, lo + d + trace.unload_s.get(r, 0.0), r) for _, _, lo, hi, r, d, n in steps
              if n <= 1 and hi < lo + d]
    out: set[tuple[str, int]] = set()
    for sid, k, lo, hi, r, _, _ in steps:
        load = trace.load_s.get(r, 0.0)
        if any(r2 != r and b_start <= lo and hi < b_end + load for b_start, b_end, r2 in blocks):
            out.add((sid, k))
    return out
