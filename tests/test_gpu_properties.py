"""Properties of the sovhub policy on random and adversarial workloads (hypothesis), not example traces.

Every workload runs through the simulator (the same reducers as the hub) and must show:
- progress: no stall (livelock, deadlock, a policy that never settles), nothing left queued or running;
- no resident is loaded and then unloaded without a dispatch on it while a job for it waits;
- loads made for waiting work are at most the jobs dispatched (each such load serves one);
- `decide` is pure and deterministic on every state the run passes through.
`SOVHUB_SCHED_EXAMPLES` sets the examples per family (default 60, sized for the 15-minute suite on
two cores; `SOVHUB_SCHED_EXAMPLES=3000 pytest tests/test_gpu_properties.py` for a long run).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.bench.gpusim.simulator import Simulation
from hub.bench.gpusim.traces import Session, Step, Trace, gb10_residents
from hub.gpu.model import PolicyParams
from hub.gpu.policy import decide
from tests.gpu_strategies import NAMES, residents

EXAMPLES = int(os.environ.get("SOVHUB_SCHED_EXAMPLES", "60"))
CHECK = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
CLASSES = ("interactive", "skill", "scheduled")


_calls = itertools.count()


def checked_decide(state, now):
    """`decide`, asserted pure and deterministic on every third state of the run (cost)."""
    if next(_calls) % 3:
        return decide(state, now)
    before = replace(state)
    first = decide(state, now)
    assert decide(state, now) == first
    assert state == before
    return first


def step(draw, resident=None, *, est=None, think=None, chunks=1):
    r = resident or draw(st.sampled_from(NAMES))
    e = est if est is not None else draw(st.floats(1, 300))
    actual = draw(st.floats(0.5, 3 * e + 1))
    return Step(r, e, actual, think if think is not None else draw(st.floats(0, 60)), chunks)


def session(draw, i, at, cls=None, steps=None, **kw):
    return Session(f"s{i}", at, cls or draw(st.sampled_from(CLASSES)), tuple(steps), kind="x", **kw)


@st.composite
def random_workload(draw):
    sessions = []
    for i in range(draw(st.integers(1, 25))):
        at = draw(st.floats(0, 3600))
        steps = [step(draw) for _ in range(draw(st.integers(1, 4)))]
        sessions.append(session(draw, i, at, steps=steps, declares_next=draw(st.booleans()),
                                auto=draw(st.booleans()) and all(s.resident == "sglang" for s in steps)))
    return sessions


@st.composite
def alternating(draw):
    """Two or three residents asked for in turn every 5-60 s: the thrash pattern."""
    names = draw(st.sampled_from([NAMES[:2], NAMES[1:], NAMES, ("comfyui", "sglang")]))
    gap = draw(st.floats(5, 60))
    cls = draw(st.sampled_from(CLASSES))
    return [session(draw, i, i * gap, cls, [step(draw, names[i % len(names)], think=0.0)])
            for i in range(draw(st.integers(4, 40)))]


@st.composite
def stream_with_rare_long_job(draw):
    """A continuous interactive stream on the LLM and one long job on another resident."""
    gap = draw(st.floats(5, 60))
    n = draw(st.integers(10, 60))
    out = [session(draw, i, i * gap, "interactive", [step(draw, "sglang", est=15.0, think=0.0)]) for i in range(n)]
    long_at = draw(st.floats(0, n * gap))
    out.append(session(draw, n, long_at, draw(st.sampled_from(["skill", "scheduled"])),
                       [step(draw, draw(st.sampled_from(NAMES[1:])), est=draw(st.floats(300, 3000)), think=0.0)]))
    return out


@st.composite
def bursts_beyond_capacity(draw):
    """Bursts of many jobs at once over all residents, far more than the max waits allow."""
    out = []
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.floats(0, 1800))
        for _ in range(draw(st.integers(6, 20))):
            out.append(session(draw, len(out), at + draw(st.floats(0, 5)), steps=[step(draw, think=0.0)]))
    return out


@st.composite
def cancelled_while_loading(draw):
    """Jobs whose clients give up while their resident is still loading (or before)."""
    out = []
    for i in range(draw(st.integers(1, 20))):
        out.append(session(draw, i, draw(st.floats(0, 1200)), steps=[step(draw, think=0.0)],
                           cancel_after_s=draw(st.one_of(st.none(), st.floats(0.1, 240)))))
    return out


def run(specs_load_unload, sessions, **params):
    specs, load, unload = specs_load_unload
    sessions = tuple(sorted(sessions, key=lambda s: (s.arrival, s.id)))
    trace = Trace("prop", 0, max([s.arrival for s in sessions], default=0.0) + 60, sessions, specs, load, unload)
    sim = Simulation(trace, checked_decide, PolicyParams(**params))
    return sim, sim.run()


def assert_progress(sim, out):
    assert out["stalled"] is None, out["stalled"]
    assert out["jobs_left"] == 0
    m = sim.m
    assert m.done + m.failed + m.cancelled == m.submitted
    assert out["unloads_unserved"] == 0, m.history[-12:]
    # a lease that yielded is queued again for the rest of its work: one more load at most
    assert out["loads_for_work"] <= m.done + m.failed + m.cancelled + m.yields
    assert out["swaps"] <= 2 * (m.submitted + m.yields) + 2 * (m.submitted == 0) + 1
    # idle with work waiting only while a finished job's hold keeps its resident (a conversation's
    # next turn, a pipeline's declared next step): at most one hold per finished job
    p = sim.state.params
    assert out["idle_while_queued_s"] <= max(p.conversation_s, p.anticipation_s) * m.done + 1e-6


@CHECK
@given(residents(), random_workload())
def test_random_workloads_always_make_progress(res, sessions):
    assert_progress(*run(res, sessions))


@CHECK
@given(residents(), alternating())
def test_residents_alternating_every_few_seconds_never_livelock(res, sessions):
    sim, out = run(res, sessions)
    assert_progress(sim, out)


@CHECK
@given(residents(), stream_with_rare_long_job())
def test_an_interactive_stream_never_starves_a_rare_long_job(res, sessions):
    sim, out = run(res, sessions)
    assert_progress(sim, out)
    assert sim.m.done + sim.m.failed == len(sessions)  # the long job ran too (or overran its busy timeout)


@settings(CHECK, max_examples=max(10, EXAMPLES // 2))
@given(residents(), bursts_beyond_capacity())
def test_bursts_far_beyond_capacity_degrade_without_oscillating(res, sessions):
    assert_progress(*run(res, sessions))


@CHECK
@given(residents(), cancelled_while_loading())
def test_jobs_cancelled_while_their_resident_loads_leave_nothing_behind(res, sessions):
    assert_progress(*run(res, sessions))


@CHECK
@given(residents(), random_workload(), st.integers(0, 8), st.floats(0, 120), st.floats(0, 60))
def test_progress_holds_for_any_lookahead_residency_and_margin(res, sessions, lookahead, min_res, margin):
    assert_progress(*run(res, sessions, lookahead=lookahead, min_residency_s=min_res, urgency_margin_s=margin))


def run_with(specs_load_unload, sessions, setup, *, preload=False, **params):
    """`run`, with the initial state changed by `setup` (an operator pin) and preloading on or off."""
    specs, load, unload = specs_load_unload
    sessions = tuple(sorted(sessions, key=lambda s: (s.arrival, s.id)))
    trace = Trace("prop", 0, max([s.arrival for s in sessions], default=0.0) + 60, sessions, specs, load, unload)
    sim = Simulation(trace, checked_decide, PolicyParams(**params), preload=preload)
    sim.state = setup(sim.state)
    return sim, sim.run()


@CHECK
@given(residents(), random_workload(), st.floats(1, 4 * 3600))
def test_a_pin_holds_its_resident_until_it_expires_and_every_job_still_runs(res, sessions, pin_s):
    from hub.gpu import reducers as R

    sim, out = run_with(res, sessions, lambda s: R.pin(s, "sglang", pin_s, "@owner", 0.0))
    assert_progress_with_pin(sim, out, pin_s)
    unloads = [t for t, kind, r in sim.m.history if kind == "unload" and r == "sglang"]
    assert all(t >= pin_s for t in unloads), (pin_s, unloads)  # nothing evicts a pinned resident


def assert_progress_with_pin(sim, out, pin_s):
    """Progress as `assert_progress`; the idle allowance grows by the pin (the documented wait a pin
    may add, bounded by `pin_max_s`)."""
    assert out["stalled"] is None, out["stalled"]
    assert out["jobs_left"] == 0
    m = sim.m
    assert m.done + m.failed + m.cancelled == m.submitted
    assert out["unloads_unserved"] == 0
    p = sim.state.params
    assert out["idle_while_queued_s"] <= max(p.conversation_s, p.anticipation_s) * m.done + pin_s + 1e-6


@st.composite
def with_scheduled(draw):
    """A random workload plus scheduled jobs the policy sees ahead (for preloading)."""
    out = list(draw(random_workload()))
    for i in range(draw(st.integers(1, 6))):
        out.append(session(draw, 1000 + i, draw(st.floats(0, 3600)), "scheduled",
                           [step(draw) for _ in range(draw(st.integers(1, 3)))]))
    return out


@CHECK
@given(residents(), with_scheduled())
def test_preloading_for_scheduled_jobs_keeps_progress_and_the_load_bounds(res, sessions):
    sim, out = run_with(res, sessions, lambda s: s, preload=True)
    assert out["stalled"] is None, out["stalled"]
    assert out["jobs_left"] == 0
    m = sim.m
    assert m.done + m.failed + m.cancelled == m.submitted
    assert out["unloads_unserved"] == 0
    scheduled = sum(1 for s in sessions if s.job_class == "scheduled")
    # each preload is one load at most per scheduled arrival on top of the loads for work
    assert out["swaps"] <= 2 * m.submitted + 2 * scheduled + 1
    p = sim.state.params
    assert out["idle_while_queued_s"] <= max(p.conversation_s, p.anticipation_s) * m.done + 1e-6


@CHECK
@given(residents(), with_scheduled())
def test_preloading_never_starts_while_a_conversation_or_any_work_is_under_way(res, sessions):
    """Every preload Load happens on an idle GPU: nothing queued, nothing running, no hold."""
    from hub.gpu.model import Load

    seen = []

    def spy(state, now):
        acts = checked_decide(state, now)
        for a in acts:
            if isinstance(a, Load) and a.reason.startswith("preload"):
                live = [r for r in state.reservations if r.expires_at > now]
                seen.append((bool(state.queue), bool(state.running), bool(live)))
        return acts

    specs, load, unload = res
    srt = tuple(sorted(sessions, key=lambda s: (s.arrival, s.id)))
    trace = Trace("prop", 0, max(s.arrival for s in srt) + 60, srt, specs, load, unload)
    out = Simulation(trace, spy, PolicyParams(), preload=True).run()
    assert out["stalled"] is None
    assert all(s == (False, False, False) for s in seen), seen


# -- leases with checkpoints (a podcast's TTS chunks) that may yield to a higher class ----------


@st.composite
def chunked_leases_under_chat(draw):
    """Long leases made of chunks (skill or scheduled) on the TTS or image server while chats
    arrive on the LLM: the chats need the chunked lease to yield, the leases need to finish."""
    out = []
    for _ in range(draw(st.integers(1, 3))):
        n = draw(st.integers(2, 40))
        out.append(session(draw, len(out), draw(st.floats(0, 1800)), draw(st.sampled_from(["skill", "scheduled"])),
                           [step(draw, draw(st.sampled_from(NAMES[1:])), est=15.0 * n, think=0.0, chunks=n)]))
    gap = draw(st.floats(5, 400))
    for i in range(draw(st.integers(1, 30))):
        turns = [step(draw, "sglang", est=15.0, think=0.0 if k == 0 else draw(st.floats(5, 240)))
                 for k in range(draw(st.integers(1, 4)))]
        out.append(session(draw, len(out), i * gap, draw(st.sampled_from(CLASSES)), turns, declares_next=False))
    for _ in range(draw(st.integers(0, 6))):  # other work in between
        out.append(session(draw, len(out), draw(st.floats(0, 3600)), steps=[step(draw, think=0.0)]))
    return out


def yield_spy(seen):
    def spy(state, now):
        from hub.gpu.model import Yield

        acts = checked_decide(state, now)
        for a in acts:
            if isinstance(a, Yield):
                job = next(j for j in state.running if j.id == a.job_id)
                higher = [w for w in state.queue if state.params.rank(w.job_class) > state.params.rank(job.job_class)]
                seen.append((now - job.started_at, job.checkpoint_s is not None, bool(higher), job.yield_asked))
        return acts
    return spy


@CHECK
@given(residents(), chunked_leases_under_chat(), st.floats(0, 120))
def test_a_lease_with_checkpoints_yields_only_to_a_higher_class_after_its_min_slice_and_always_finishes(
        res, sessions, min_slice):
    """The yield rule: only a lease that declared checkpoints is asked, only once per slice, only
    after it ran `min_slice_s`, only while a higher-class job waits; every slice does work (the
    chunk under way finishes), every job ends, and no resident is loaded and unloaded unserved."""
    seen: list = []
    specs, load, unload = res
    srt = tuple(sorted(sessions, key=lambda s: (s.arrival, s.id)))
    trace = Trace("prop", 0, max(s.arrival for s in srt) + 60, srt, specs, load, unload)
    sim = Simulation(trace, yield_spy(seen), PolicyParams(min_slice_s=min_slice))
    out = sim.run()
    assert_progress(sim, out)
    for ran, chunked, higher, asked in seen:
        assert chunked and higher and not asked
        assert ran >= min_slice - 1e-3
    assert out["yields"] <= len(seen)
    # no thrash: a lease of n chunks yields at most n - 1 times (each slice renders a chunk)
    assert out["yields"] <= sum(st.chunks - 1 for s in srt for st in s.steps)


@st.composite
def long_unpreemptible_interactive_jobs(draw):
    """Interactive jobs longer than the interactive bound on the image or TTS server (they cannot
    yield) and chats on the LLM close behind: some chats are proven unservable in time."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.floats(0, 3600))
        out.append(session(draw, len(out), at, "interactive",
                           [step(draw, draw(st.sampled_from(NAMES[1:])), est=draw(st.floats(300, 1200)), think=0.0)]))
        for _ in range(draw(st.integers(0, 3))):
            out.append(session(draw, len(out), at + draw(st.floats(0, 900)), "interactive",
                               [step(draw, "sglang", est=15.0, think=0.0)]))
    return out


@CHECK
@given(long_unpreemptible_interactive_jobs(), st.sampled_from(["sovhub", "llama_swap", "fifo", "ollama"]))
def test_a_step_proven_unavoidable_is_missed_by_every_policy(sessions, policy):
    """Soundness evidence for `bound.unavoidable_steps`: when it proves a step unservable within
    the bounds, no policy keeps every bound on that trace, and the simulator never counts more
    unavoidable violations than violations."""
    from hub.bench.gpusim.bound import unavoidable_steps
    from hub.bench.gpusim.simulator import simulate

    srt = tuple(sorted(sessions, key=lambda s: (s.arrival, s.id)))
    specs = gb10_residents()
    trace = Trace("prop", 0, max(s.arrival for s in srt) + 60, srt, specs,
                  {s.name: s.swap_in_s for s in specs}, {s.name: s.swap_out_s for s in specs})
    out = simulate(trace, policy)
    proven = unavoidable_steps(trace)
    total = sum(out["bound_violations"].values())
    if proven:
        assert total >= 1
    assert 0 <= out["violations_unavoidable"] <= total
    assert out["violations_unavoidable"] + out["violations_avoidable"] == total
