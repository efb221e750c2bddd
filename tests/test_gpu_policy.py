"""The scheduling policy on hand-built states: pure function in, actions out (no clock, no I/O)."""

from __future__ import annotations

import itertools
from dataclasses import replace

from hub.bench.gpusim.simulator import simulate
from hub.bench.gpusim.traces import Session, Step, Trace, gb10_residents
from hub.gpu import reducers as R
from hub.gpu.model import (
    Dispatch,
    Fail,
    ForceUnload,
    Job,
    Load,
    Phase,
    PolicyParams,
    ResidentSpec,
    Unload,
    WakeAt,
    Yield,
)
from hub.gpu.policy import decide, eta_by_job

SPECS = (
    ResidentSpec("llm", "llm", memory_gb=90, default=True, concurrency=1, swap_in_s=100, swap_out_s=10),
    ResidentSpec("img", "image", memory_gb=64, concurrency=1, swap_in_s=20, swap_out_s=5),
    ResidentSpec("tts", "tts", memory_gb=64, concurrency=1, swap_in_s=30, swap_out_s=5),
)


SPECS_GB10 = gb10_residents()


def state(resident="llm", now=0.0, **params):
    p = PolicyParams(memory_gb=128, reserve_gb=8, **params)
    return R.initial_state(SPECS, p, now, {resident: Phase.ready} if resident else {})


def job(jid, resident, at=0.0, cls="skill", est=10.0, **kw):
    return Job(id=jid, resident=resident, job_class=cls, est_seconds=est, enqueued_at=at, **kw)


def kinds(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def settle(s, now):
    """Apply the policy's dispatches and unloads the way the runtime would (no time passes)."""
    acts = decide(s, now)
    for a in acts:
        if isinstance(a, Dispatch):
            s = R.dispatch(s, a.job_id, now)
        elif isinstance(a, Unload):
            s = R.stop_started(s, a.resident, now)
    return s, acts


def test_jobs_for_the_ready_resident_start_at_once():
    s = R.submit(state(), job("a1", "llm"))
    assert kinds(decide(s, 1.0), Dispatch) == [Dispatch("a1", "llm")]


def test_batches_a_a_b_b_not_a_b_a_b():
    s = state()
    for i, r in enumerate(["img", "llm", "img", "llm"]):
        s = R.submit(s, job(f"j{i}", r, at=float(i)))
    s, acts = settle(s, 5.0)
    assert kinds(acts, Dispatch) == [Dispatch("j1", "llm")]  # the resident's job overtakes the swap
    s = R.finish(s, "j1", 15.0)
    s, acts = settle(s, 15.0)
    assert kinds(acts, Dispatch) == [Dispatch("j3", "llm")]  # ... and the next one too (lookahead)
    s = R.finish(s, "j3", 25.0)
    s, acts = settle(s, 25.0)
    assert kinds(acts, Unload) == [Unload("llm", kinds(acts, Unload)[0].reason)]  # now swap, once
    s = R.stopped(s, "llm", 35.0)
    acts = decide(s, 35.0)
    assert kinds(acts, Load)[0].resident == "img"


def test_lookahead_bounds_how_many_resident_jobs_overtake_a_waiting_swap():
    s = state(lookahead=2, min_residency_s=0)
    s = R.submit(s, job("b", "img", at=0.0))
    dispatched = []
    for i in range(5):  # a stream of resident jobs, one after another
        s = R.submit(s, job(f"a{i}", "llm", at=1.0 + i))
        s, acts = settle(s, 1.0 + i)
        dispatched += [a.job_id for a in kinds(acts, Dispatch)]
        if kinds(acts, Unload):
            break
        s = R.finish(s, f"a{i}", 1.5 + i)
    assert dispatched == ["a0", "a1"]
    assert s.phase("llm") == Phase.stopping


def test_starvation_a_stream_of_resident_jobs_cannot_hold_a_swap_past_max_wait():
    # interactive jobs outrank the skill job, so no lookahead applies; only max wait can save it
    s = state(max_wait_s={"interactive": 300, "skill": 400, "scheduled": 900})
    s = R.submit(s, job("b", "img", at=0.0))
    t = 0.0
    swapped_at = None
    while t < 1000:
        t += 5.0
        s = R.submit(s, job(f"a{t}", "llm", at=t, cls="interactive", est=5))
        s, acts = settle(s, t)
        if kinds(acts, Unload):
            swapped_at = t
            break
        for j in s.running:
            s = R.finish(s, j.id, t + 4.0)
    assert swapped_at is not None
    # the swap starts early enough for `b` to get its lease within max wait (unload 10 s + load 20 s)
    assert swapped_at + 10 + 20 <= 400


def test_forced_swap_freezes_the_resident_in_its_way():
    s = state(max_wait_s={"interactive": 300, "skill": 100, "scheduled": 900})
    s = R.submit(s, job("b", "img", at=0.0))
    s = R.submit(s, job("r", "llm", at=0.0, est=50))
    s = R.dispatch(s, "r", 0.0)
    s = R.submit(s, job("a", "llm", at=60.0, cls="interactive"))
    acts = decide(s, 60.0)  # b must swap by 100-15-(drain+10+20): nothing new goes to llm
    assert not kinds(acts, Dispatch)
    assert not kinds(acts, Unload)  # r is still in flight: drain first


def test_never_evicts_with_work_in_flight_until_the_busy_timeout():
    s = state(busy_timeout_s=60, lookahead=0, min_residency_s=0)
    s = R.submit(s, job("r", "llm", at=0.0, est=30))
    s = R.dispatch(s, "r", 0.0)
    s = R.submit(s, job("b", "img", at=1.0))
    acts = decide(s, 50.0)
    assert not kinds(acts, Unload) and not kinds(acts, ForceUnload)
    assert WakeAt(90.0) in acts  # wakes when r would count as hung
    acts = decide(s, 90.0)
    assert kinds(acts, ForceUnload) == [ForceUnload("llm", ("r",), kinds(acts, ForceUnload)[0].reason)]


def test_min_residency_lets_a_fresh_resident_serve_its_work_before_eviction():
    s = state(resident="img", min_residency_s=60, lookahead=0)
    s = R.submit(s, job("a", "llm", at=0.0, cls="interactive"))  # outranks the image jobs
    for i in range(3):
        s = R.submit(s, job(f"i{i}", "img", at=1.0))
    acts = decide(s, 10.0)  # img became ready at 0: still within its minimum residency
    assert kinds(acts, Dispatch) == [Dispatch("i0", "img")]
    assert not kinds(acts, Unload)
    s = R.dispatch(s, "i0", 10.0)
    s = R.finish(s, "i0", 70.0)
    acts = decide(s, 70.0)  # residency over, lookahead 0: the interactive job's swap goes first
    assert not kinds(acts, Dispatch)
    assert kinds(acts, Unload)[0].resident == "img"


def test_idle_returns_to_the_default_after_about_one_round_trip_of_swaps():
    s = state(resident="img")
    s = R.submit(s, job("i", "img", at=0.0))
    s = R.dispatch(s, "i", 0.0)
    s = R.finish(s, "i", 10.0)
    acts = decide(s, 20.0)
    assert not kinds(acts, Unload)
    # idle since 10 + what a wrong return costs: img out 5, llm in 100, llm out 10, img in 20
    assert WakeAt(145.0) in acts
    assert not kinds(decide(s, 140.0), Unload)
    acts = decide(s, 145.0)
    assert kinds(acts, Unload)[0].resident == "img"
    s = R.stopped(R.stop_started(s, "img", 145.0), "img", 150.0)
    assert kinds(decide(s, 150.0), Load) == [Load("llm", "default resident")]


def test_empty_gpu_loads_the_default_at_once():
    acts = decide(state(resident=None), 0.0)
    assert kinds(acts, Load)[0].resident == "llm"


def test_pipeline_follow_up_prefetches_its_resident_and_keeps_its_place():
    s = state()
    s = R.submit(s, job("p:0", "llm", at=0.0, owner="p", then="tts"))
    s = R.dispatch(s, "p:0", 0.0)
    s = R.submit(s, job("x", "img", at=5.0))  # another job that waits for a swap
    s = R.finish(s, "p:0", 30.0)  # the script is written; the TTS step is declared, not yet asked
    s, acts = settle(s, 30.0)
    assert kinds(acts, Unload)[0].resident == "llm"
    s = R.stopped(s, "llm", 40.0)
    s = R.submit(s, job("p:1", "tts", at=40.0, owner="p"))
    acts = decide(s, 40.0)
    assert kinds(acts, Load)[0].resident == "tts"  # the pipeline's step (older) beats x


def test_batch_continuation_holds_its_resident_against_a_waiting_swap():
    s = state(resident="img", lookahead=0)
    s = R.submit(s, job("b:0", "img", at=0.0, owner="b", then="img"))
    s = R.dispatch(s, "b:0", 0.0)
    s = R.submit(s, job("t", "tts", at=1.0))
    s = R.finish(s, "b:0", 20.0)
    acts = decide(s, 20.0)
    assert not kinds(acts, Unload)  # the next image is on its way: hold, do not swap for `t`
    s = R.submit(s, job("b:1", "img", at=20.0, owner="b", then="img"))
    assert kinds(decide(s, 20.0), Dispatch) == [Dispatch("b:1", "img")]
    s2 = R.finish(R.dispatch(s, "b:1", 20.0), "b:1", 40.0)
    acts = decide(s2, 40.0 + s.params.anticipation_s)  # the follow-up never came: the hold lapses
    assert kinds(acts, Unload)[0].resident == "img"


def test_default_goes_last_among_equals_so_idle_needs_no_return_swap():
    s = state(resident="img")
    s = R.submit(s, job("d", "llm", at=0.0))  # older, same class, for the default
    s = R.submit(s, job("t", "tts", at=1.0))
    s = R.stopped(R.stop_started(s, "img", 2.0), "img", 2.0 + 200)  # img long gone
    acts = decide(s, 300.0)
    assert [a.resident for a in kinds(acts, Load)] == ["tts"]  # then llm, and the day ends on it


def test_default_goes_last_only_among_equals_and_never_undoes_a_swap():
    s = state(resident=None)
    s = R.submit(s, job("d", "llm", at=0.0, cls="interactive"))
    s = R.submit(s, job("t", "tts", at=1.0))
    assert [a.resident for a in kinds(decide(s, 2.0), Load)] == ["llm"]  # chat outranks the skill
    s = state(resident="tts")
    s = R.submit(s, job("d", "llm", at=0.0))
    s = R.submit(s, job("t", "tts", at=1.0))
    s = R.stopped(R.stop_started(s, "tts", 2.0), "tts", 10.0)  # tts just made room for the llm
    assert [a.resident for a in kinds(decide(s, 10.0), Load)] == ["llm"]


def _chat_during_the_stop(img_job):
    s = R.submit(state(), img_job)
    s, acts = settle(s, 0.0)
    assert kinds(acts, Unload)[0].resident == "llm"  # the llm is idle: make room for the image
    s = R.submit(s, job("c", "llm", at=5.0, cls="interactive"))  # a chat comes during the stop
    return R.stopped(s, "llm", 10.0)


def test_a_swap_under_way_is_finished_when_the_chat_can_afford_it():
    s = _chat_during_the_stop(job("x", "img", at=0.0))
    # img in 20 + its work 10 + img out 5 + llm in 100 fit the chat's 300 s: no load back and forth
    assert [a.resident for a in kinds(decide(s, 10.0), Load)] == ["img"]


def test_a_swap_under_way_yields_to_the_chat_when_a_batch_of_unknown_length_waits():
    s = _chat_during_the_stop(job("x", "img", at=0.0, owner="b", then="img"))
    assert [a.resident for a in kinds(decide(s, 10.0), Load)] == ["llm"]


def test_a_swap_under_way_yields_to_the_chat_that_cannot_afford_it():
    s = _chat_during_the_stop(job("x", "img", at=0.0, est=200.0))
    assert [a.resident for a in kinds(decide(s, 10.0), Load)] == ["llm"]


def test_a_job_that_could_not_wait_for_the_round_trip_is_served_before_leaving():
    s = state(lookahead=0, min_residency_s=0)
    s = R.submit(s, job("b", "img", at=0.0, priority=60))  # outranks the chat, lookahead used up
    fresh = R.submit(s, job("c", "llm", at=400.0, cls="interactive"))
    acts = decide(fresh, 400.0)  # 270 s of slack cover img out/in, b's work, img out, llm in
    assert not kinds(acts, Dispatch) and kinds(acts, Unload)[0].resident == "llm"
    late = R.submit(s, job("c", "llm", at=250.0, cls="interactive"))
    acts = decide(late, 400.0)  # leaving now would force a return before b did any work
    assert kinds(acts, Dispatch) == [Dispatch("c", "llm")] and not kinds(acts, Unload)


def test_a_job_that_a_visit_elsewhere_would_make_late_goes_first():
    s = state(resident=None)
    s = R.submit(s, job("t", "tts", at=0.0))  # aged: outranks the chat by now
    s = R.submit(s, job("c", "llm", at=400.0, cls="interactive"))
    # at 540 the chat is not urgent yet (llm in 100 + margin 30 < 160 s left), but tts first
    # (in 30, out 5) and then the llm (100) would take it past 300 s
    assert [a.resident for a in kinds(decide(s, 540.0), Load)] == ["llm"]
    assert [a.resident for a in kinds(decide(s, 500.0), Load)] == ["tts"]  # 200 s left: room for both


def test_memory_budget_is_never_exceeded_and_stops_are_awaited():
    s = state()
    s = R.submit(s, job("b", "img", at=0.0))
    s, acts = settle(s, 0.0)
    assert kinds(acts, Unload) and not kinds(acts, Load)
    assert not kinds(decide(s, 1.0), Load)  # llm still stopping: its memory is not back yet
    s = R.stopped(s, "llm", 12.0)
    assert kinds(decide(s, 12.0), Load)[0].resident == "img"


def test_co_resident_when_memory_allows():
    specs = (*SPECS, ResidentSpec("small", memory_gb=10))
    s = R.initial_state(specs, PolicyParams(), 0.0, {"llm": Phase.ready})
    s = R.submit(s, job("x", "small"))
    acts = decide(s, 0.0)
    assert kinds(acts, Load) == [Load("small", kinds(acts, Load)[0].reason)] and not kinds(acts, Unload)


def test_an_exclusive_resident_is_never_loaded_next_to_another_even_when_memory_allows():
    specs = (ResidentSpec("llm", memory_gb=94, default=True, exclusive=True),
             ResidentSpec("tts", memory_gb=24, exclusive=True))
    s = R.initial_state(specs, PolicyParams(memory_gb=128, reserve_gb=8), 0.0, {"llm": Phase.ready})
    s = R.submit(s, job("t", "tts"))
    s, acts = settle(s, 0.0)
    assert [a.resident for a in kinds(acts, Unload)] == ["llm"] and not kinds(acts, Load)
    assert not kinds(decide(s, 1.0), Load)  # not while the llm is still stopping
    s = R.stopped(s, "llm", 10.0)
    assert [a.resident for a in kinds(decide(s, 10.0), Load)] == ["tts"]


def test_one_exclusive_resident_excludes_the_others_but_they_may_share_among_themselves():
    specs = (ResidentSpec("llm", memory_gb=40, default=True), ResidentSpec("tts", memory_gb=20),
             ResidentSpec("img", memory_gb=20, exclusive=True))
    s = R.initial_state(specs, PolicyParams(memory_gb=128, reserve_gb=8), 0.0, {"llm": Phase.ready})
    s = R.submit(s, job("t", "tts"))
    acts = decide(s, 0.0)
    assert [a.resident for a in kinds(acts, Load)] == ["tts"] and not kinds(acts, Unload)
    s = R.ready(R.load_started(s, "tts", 0.0), "tts", 5.0)
    s = R.dispatch(s, "t", 5.0)
    s = R.finish(s, "t", 6.0)
    s = R.submit(s, job("i", "img", at=7.0))
    s, acts = settle(s, 70.0)
    assert sorted(a.resident for a in kinds(acts, Unload)) == ["llm", "tts"]


def test_failed_start_fails_its_waiting_jobs_with_the_reason():
    s = state(resident=None)
    s = R.submit(s, job("b", "img", at=0.0))
    s = R.load_started(s, "img", 0.0)
    s = R.load_failed(s, "img", 30.0, "readiness probe never answered 200 within 30 s")
    fails = kinds(decide(s, 30.0), Fail)
    assert fails == [Fail("b", "resident img failed to start: readiness probe never answered 200 within 30 s")]


def test_unknown_resident_fails_clearly():
    s = R.submit(state(), job("z", "nope"))
    (f,) = kinds(decide(s, 0.0), Fail)
    assert "unknown resident 'nope'" in f.reason


def test_swap_cost_is_learned_as_a_moving_average():
    s = state(resident=None)
    s = R.ready(R.load_started(s, "llm", 0.0), "llm", 180.0)
    assert s.cost_in("llm") == 180.0  # the first measurement replaces the prior guess
    s = R.stopped(R.stop_started(s, "llm", 200.0), "llm", 260.0)
    s = R.ready(R.load_started(s, "llm", 260.0), "llm", 260.0 + 80.0)
    assert s.cost_in("llm") == 0.7 * 180.0 + 0.3 * 80.0
    assert s.cost_out("llm") == 60.0


def test_eta_counts_the_swap_and_the_queue_ahead():
    s = state()
    s = R.submit(s, job("b1", "img", at=0.0, est=20))
    s = R.submit(s, job("b2", "img", at=1.0, est=20))
    eta = eta_by_job(s, 2.0)
    assert eta["b1"] == 10 + 20  # unload llm + load img
    assert eta["b2"] == 10 + 20 + 20


def drive(s, now, load_s, run_s, unload_s=10.0, steps=40):
    """Carry out the policy's actions with fixed durations (a tiny runtime); the event log."""
    log, running = [], {}
    for _ in range(steps):
        acts = decide(s, now)
        for a in acts:
            if isinstance(a, Dispatch):
                s = R.dispatch(s, a.job_id, now)
                running[a.job_id] = now + run_s
                log.append(("dispatch", a.job_id, now))
            elif isinstance(a, Load):
                s = R.load_started(s, a.resident, now)
                log.append(("load", a.resident, now))
                now += load_s[a.resident]
                s = R.ready(s, a.resident, now)
            elif isinstance(a, Unload):
                s = R.stop_started(s, a.resident, now)
                log.append(("unload", a.resident, now))
                now += unload_s
                s = R.stopped(s, a.resident, now)
        if not s.queue and not running:
            return log
        if not any(isinstance(a, Dispatch | Load | Unload) for a in acts):
            if not running:
                raise AssertionError(f"stuck at {now}: {log}")
            jid, now = min(running.items(), key=lambda kv: kv[1])
            del running[jid]
            s = R.finish(s, jid, now)
    raise AssertionError(f"no end after {steps} steps: {log}")


def test_the_minimal_livelock_two_overdue_jobs_each_get_served_once():
    # empty GPU, an image queued at t=0, a chat at t=1600, first decision at t=2000 (both overdue):
    # loading ComfyUI once made the chat the most urgent, which unloaded ComfyUI before the image
    # ran, which made the image the most urgent again, forever
    s = R.initial_state(SPECS_GB10, PolicyParams(), 0.0)
    s = R.submit(s, job("img", "comfyui", at=0.0))
    s = R.submit(s, job("chat", "sglang", at=1600.0, cls="interactive"))
    log = drive(s, 2000.0, {"sglang": 180.0, "comfyui": 30.0, "tts": 45.0}, run_s=20.0)
    assert [e[:2] for e in log] == [("load", "comfyui"), ("dispatch", "img"), ("unload", "comfyui"),
                                    ("load", "sglang"), ("dispatch", "chat")]  # earliest deadline first


def test_a_fresh_resident_serves_the_job_it_was_loaded_for_even_when_another_is_more_urgent():
    s = R.initial_state(SPECS_GB10, PolicyParams(), 0.0)
    s = R.submit(s, job("img", "comfyui", at=0.0))
    s = R.ready(R.load_started(s, "comfyui", 0.0), "comfyui", 30.0)
    s = R.submit(s, job("chat", "sglang", at=31.0, cls="interactive"))
    acts = decide(s, 2000.0)  # the chat is long overdue: still, the image goes first
    assert kinds(acts, Dispatch) == [Dispatch("img", "comfyui")] and not kinds(acts, Unload)


def test_when_bounds_collide_they_give_way_earliest_deadline_first_then_by_class():
    s = R.initial_state(SPECS_GB10, PolicyParams(max_wait_s={"interactive": 300, "skill": 300,
                                                            "scheduled": 300}), 0.0)
    s = R.submit(s, job("sched", "tts", at=0.0, cls="scheduled"))
    s = R.submit(s, job("img", "comfyui", at=0.0, cls="skill"))
    s = R.submit(s, job("chat", "sglang", at=0.0, cls="interactive"))
    log = drive(s, 1000.0, {"sglang": 180.0, "comfyui": 30.0, "tts": 45.0}, run_s=20.0)
    assert [e[1] for e in log if e[0] == "dispatch"] == ["chat", "img", "sched"]


def _answered_chat_then_image(swap_in_llm: float):
    specs = (ResidentSpec("llm", memory_gb=94, default=True, exclusive=True, swap_in_s=swap_in_llm, swap_out_s=10),
             ResidentSpec("img", memory_gb=32, exclusive=True, swap_in_s=10, swap_out_s=5))
    s = R.initial_state(specs, PolicyParams(min_residency_s=0), 0.0, {"llm": Phase.ready})
    s = R.submit(s, job("c1", "llm", at=0.0, cls="interactive", owner="conv"))
    s = R.dispatch(s, "c1", 0.0)
    s = R.finish(s, "c1", 15.0)
    return R.submit(s, job("i", "img", at=20.0, cls="skill", est=20.0))


def test_a_conversation_keeps_the_llm_for_its_next_turn_against_lower_work():
    s = _answered_chat_then_image(swap_in_llm=240.0)  # the round trip (285 s) would break a 300 s bound
    assert not kinds(decide(s, 30.0), Unload)
    assert kinds(decide(s, 15.0 + 121.0), Unload)  # the hold ends after conversation_s
    s = R.submit(s, job("c2", "llm", at=60.0, cls="interactive", owner="conv"))
    assert kinds(decide(s, 60.0), Dispatch) == [Dispatch("c2", "llm")]


def test_no_conversation_hold_when_swaps_take_seconds():
    s = _answered_chat_then_image(swap_in_llm=3.0)  # the demo's stand-ins: nothing to protect
    assert [a.resident for a in kinds(decide(s, 30.0), Unload)] == ["llm"]


def test_decide_is_pure():
    s = R.submit(R.submit(state(), job("a", "llm")), job("b", "img"))
    before = replace(s)
    assert decide(s, 3.0) == decide(s, 3.0)
    assert s == before


def _trace(sessions, horizon=3600.0):
    return Trace("t", 0, horizon, tuple(sessions), SPECS, {"llm": 100, "img": 20, "tts": 30},
                 {"llm": 10, "img": 5, "tts": 5})


def test_thrash_alternating_requests_cost_one_swap_each_way_not_one_per_job():
    # A B A B ... all queued at once: fifo swaps for every job, sovhub batches
    sessions = [Session(f"s{i}", float(i), "skill", (Step("img" if i % 2 else "llm", 10, 10),))
                for i in range(10)]
    mine = simulate(_trace(sessions), "sovhub", PolicyParams(lookahead=10))
    fifo = simulate(_trace(sessions), "fifo")
    assert fifo["swaps"] >= 9
    assert mine["swaps"] <= 2
    assert mine["jobs_done"] == 10 and mine["idle_while_queued_s"] == 0


def test_two_closed_loop_batches_do_not_ping_pong():
    # two clients, each asking for its next step only after the previous one finished
    img = Session("img", 0.0, "skill", tuple(Step("img", 10, 10) for _ in range(6)))
    tts = Session("tts", 0.0, "skill", tuple(Step("tts", 10, 10) for _ in range(6)))
    mine = simulate(_trace([img, tts]), "sovhub")
    llama = simulate(_trace([img, tts]), "llama_swap")
    assert mine["swaps"] <= 3  # img, tts, (back to default)
    assert llama["swaps"] > 6


def test_a_declared_follow_up_goes_before_a_younger_job_even_before_it_is_asked_for():
    s = state()
    s = R.submit(s, job("p:0", "llm", at=0.0, owner="p", then="tts"))
    s = R.dispatch(s, "p:0", 0.0)
    s = R.submit(s, job("x", "img", at=5.0))  # younger than the pipeline's step
    s = R.finish(s, "p:0", 30.0)  # the TTS step is declared but its request has not arrived yet
    s, acts = settle(s, 30.0)
    s = R.stopped(s, "llm", 40.0)
    acts = decide(s, 40.0)
    assert kinds(acts, Load)[0].resident == "tts"  # prefetched for the pipeline, not for x


def _gb10_trace(sessions):
    specs = gb10_residents()
    return Trace("t", 0, 3600.0, tuple(sessions), specs, {s.name: s.swap_in_s for s in specs},
                 {s.name: s.swap_out_s for s in specs})


def test_a_chat_behind_a_podcast_lease_gets_the_llm_within_its_bound_and_no_chunk_is_rendered_twice():
    # a 26-chunk TTS lease of 390 s is longer than the 300 s interactive bound: the lease yields at
    # a checkpoint, the chat is served, the rest of the chunks follow (without the yield the chat
    # waited for the whole lease, the TTS stop and the LLM load)
    pod = Session("pod", 0.0, "skill", (Step("tts", 390, 390, chunks=26),))
    chat = Session("chat", 150.0, "interactive", (Step("sglang", 15, 15),))
    mine = simulate(_gb10_trace([pod, chat]), "sovhub")
    assert mine["yields"] == 1 and mine["jobs_done"] == 2 and mine["jobs_left"] == 0
    assert mine["wait_max_s"]["interactive"] <= 300
    assert mine["bound_violations"] == {"interactive": 0, "skill": 0, "scheduled": 0}
    unyielding = simulate(_gb10_trace([replace(pod, steps=(Step("tts", 390, 390),)), chat]), "sovhub")
    assert unyielding["yields"] == 0 and unyielding["bound_violations"]["interactive"] == 1


def test_each_slice_of_a_yielded_lease_renders_new_chunks_and_none_twice():
    from hub.bench.gpusim.baselines import POLICIES
    from hub.bench.gpusim.simulator import Simulation

    pod = Session("pod", 0.0, "skill", (Step("tts", 390, 390, chunks=26),))
    chats = [Session(f"c{i}", 150.0 + 400 * i, "interactive", (Step("sglang", 15, 15),)) for i in range(3)]
    sim = Simulation(_gb10_trace([pod, *chats]), POLICIES["sovhub"])
    out = sim.run()
    slices = [k for k in sim.actual if k.startswith("pod:")]
    assert out["yields"] == len(slices) - 1 >= 1 and out["jobs_left"] == 0
    left = [sim.chunks[k] for k in slices]  # chunks still to render when each slice began
    assert left[0] == 26 and all(a > b for a, b in itertools.pairwise(left))  # every slice rendered some
    assert all(abs(sim.actual[k] - 15 * sim.chunks[k]) < 1e-6 for k in slices)  # only the rest is rendered
    assert out["bound_violations"]["interactive"] == 0


def test_a_lease_with_checkpoints_is_asked_to_yield_only_after_its_min_slice_and_only_for_a_higher_class():
    s = R.initial_state(gb10_residents(), PolicyParams(min_slice_s=30.0), 0.0, {"tts": Phase.ready})
    s = R.submit(s, Job("pod", "tts", "skill", est_seconds=390, checkpoint_s=15, enqueued_at=0.0))
    s = R.dispatch(s, "pod", 0.0)
    s = R.submit(s, Job("chat", "sglang", "interactive", est_seconds=15, enqueued_at=-200.0))  # already pressing
    assert not kinds(decide(s, 10.0), Yield)  # inside its min slice: a wake-up at its end, no yield
    assert min(a.at for a in kinds(decide(s, 10.0), WakeAt)) == 30.0
    assert kinds(decide(s, 31.0), Yield) == [Yield("pod", "chat near its max wait")]
    asked = R.ask_yield(s, "pod")
    assert not kinds(decide(asked, 32.0), Yield)  # asked once per slice
    peer = R.submit(R.remove(s, "chat"), Job("img", "comfyui", "skill", est_seconds=20, enqueued_at=0.0))
    assert not kinds(decide(peer, 1700.0), Yield)  # never to its own class
    after = R.yielded(asked, "pod", 40.0, "pod+2", done_share=3 / 26)
    rest = next(j for j in after.queue if j.id == "pod+2")
    assert rest.slices == 2 and rest.checkpoint_s == 15 and rest.age_origin == 0.0
    assert abs(rest.est_seconds - 390 * 23 / 26) < 1e-9 and not after.running
