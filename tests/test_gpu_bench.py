"""`sovhub bench gpu`: the simulated comparison of the sovhub policy with the baselines."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from hub.bench import gpu
from hub.bench.gpusim.bound import lower_bound_loads, unavoidable_steps
from hub.bench.gpusim.simulator import simulate
from hub.bench.gpusim.traces import Session, Step, Trace, gb10_residents, make
from hub.gpu.model import Load, Phase, Unload


@pytest.mark.parametrize("trace", ["mixed", "bursty", "image-batch", "day"])
def test_bench_gpu_reports_every_policy_and_sovhub_always_finishes(trace):
    out = gpu.run(trace=trace, seed=2)
    assert out["trace"] == trace and out["ok"] and out["stalls"] == 0
    assert out["lower_bound_swaps"] >= 1
    assert {"sovhub", "llama_swap", "fifo", "ollama"} <= set(out["policies"])
    for figures in out["policies"].values():
        for key in ("swaps", "swap_s", "idle_while_queued_s", "jobs_done", "jobs_left", "stalled"):
            assert key in figures
        for key in ("wait_p50_s", "wait_p95_s", "wait_max_s", "bound_violations"):
            assert set(figures[key]) == {"interactive", "skill", "scheduled"}
    for name, figures in out["policies"].items():
        assert figures["stalled"] is None and figures["jobs_left"] == 0, name
        assert figures["swaps"] >= out["lower_bound_swaps"], name  # nobody beats the offline bound
    assert out["policies"]["sovhub"]["jobs_failed"] == 0


def thrash(state, now):
    """A policy that loads and unloads without ever dispatching (a livelock)."""
    acts = [Unload(n) for n, r in state.residents.items() if r.phase == Phase.ready]
    if not acts and all(r.phase == Phase.stopped for r in state.residents.values()) and state.queue:
        acts = [Load(state.queue[0].resident)]
    return acts


def test_a_livelocking_policy_is_reported_stalled_with_its_state_not_a_hang():
    out = simulate(make("bursty", 1), thrash)
    assert out["stalled"]["reason"].endswith("loads without a dispatch (a livelock)")
    assert out["stalled"]["queue"] and set(out["stalled"]["residents"]) == {"sglang", "comfyui", "tts"}
    assert out["jobs_left"] > 0 and not out["wait_within_bound"]


def test_a_policy_that_does_nothing_is_reported_as_a_deadlock():
    out = simulate(make("image-batch", 1), lambda state, now: [])
    assert "deadlock" in out["stalled"]["reason"]
    assert out["bound_violations"]["interactive"] > 0  # waits of jobs still queued count


def test_bench_exits_non_zero_when_a_policy_stalls(monkeypatch):
    from typer.testing import CliRunner

    from hub.bench.gpusim import baselines
    from hub.cli.main import app

    monkeypatch.setitem(baselines.POLICIES, "thrash", thrash)
    res = CliRunner().invoke(app, ["bench", "gpu", "--trace", "bursty", "--policies", "sovhub,thrash"])
    assert res.exit_code == 1
    data = json.loads(res.stdout)
    assert data["ok"] is False and data["stalls"] == 1
    assert data["policies"]["thrash"]["stalled"] and data["policies"]["sovhub"]["stalled"] is None


def test_seeds_give_min_median_max_per_policy():
    out = gpu.run(trace="image-batch", seeds=3, policies="sovhub,llama_swap")
    s = out["summary"]["sovhub"]
    assert s["swaps"]["min"] <= s["swaps"]["median"] <= s["swaps"]["max"]
    assert set(s["wait_max_s"]) == {"interactive", "skill", "scheduled"}
    assert s["stalls"] == [] and s["jobs_left"] == 0
    assert [r["seed"] for r in out["by_seed"]] == [1, 2, 3]


@pytest.mark.slow
@pytest.mark.parametrize("trace", ["mixed", "bursty", "image-batch", "day"])
def test_on_thirty_seeds_sovhub_never_stalls_and_swaps_no_more_than_the_faithful_baselines(trace):
    out = gpu.run(trace=trace, seeds=30, policies="sovhub,llama_swap,ollama")
    assert out["ok"]
    mine, llama, ollama = (out["summary"][n] for n in ("sovhub", "llama_swap", "ollama"))
    assert mine["stalls"] == [] and mine["jobs_left"] == 0
    assert mine["swaps"]["median"] <= min(llama["swaps"]["median"], ollama["swaps"]["median"])
    assert mine["swaps"]["min"] >= out["lower_bound_swaps"]["min"]
    # bounds: sovhub misses only what no schedule could keep (bound.unavoidable_steps)
    assert mine["violations_avoidable"] == 0
    assert mine["bound_violations"] <= min(llama["bound_violations"], ollama["bound_violations"])
    # idle with work waiting only while a conversation or a pipeline keeps its resident
    assert mine["idle_while_queued_s"]["max"] <= 2 * 3600


def test_the_lower_bound_counts_a_forced_alternation_and_nothing_else():
    # two image jobs hours apart, each with the 1800 s skill bound: any schedule loads ComfyUI twice
    # and need not return to the LLM in between, so two loads; the same job twice at once needs one
    a = Session("a", 0.0, "skill", (Step("comfyui", 20, 20),))
    b = Session("b", 3 * 3600.0, "skill", (Step("comfyui", 20, 20),))
    chat = Session("c", 3600.0, "interactive", (Step("sglang", 15, 15),))
    assert lower_bound_loads(_gb10([a, b])) == 1
    assert lower_bound_loads(_gb10([a, chat, b])) == 3
    assert lower_bound_loads(_gb10([a, replace(b, arrival=10.0)])) == 1


def test_a_chat_under_a_long_unpreemptible_interactive_job_is_proven_unavoidable_and_reported_so():
    # a 600 s interactive image (one chunk, it cannot yield) must start by t=300 and so runs until
    # at least t=600; ComfyUI's stop and the LLM's load follow: no schedule has the LLM ready before
    # t=788, so a chat asked for at t=310 (bound until t=610) is missed by every schedule
    image = Session("img", 0.0, "interactive", (Step("comfyui", 600, 600),))
    chat = Session("chat", 310.0, "interactive", (Step("sglang", 15, 15),))
    later = Session("later", 900.0, "interactive", (Step("sglang", 15, 15),))
    trace = _gb10([image, chat, later])
    assert unavoidable_steps(trace) == {("chat", 0)}
    for policy in ("sovhub", "llama_swap"):
        out = simulate(trace, policy)
        assert out["bound_violations"]["interactive"] == 1
        assert out["violations_unavoidable"] == 1 and out["violations_avoidable"] == 0
        assert out["violations"][0]["step"] == ["chat", 0] and out["violations"][0]["unavoidable"]
    # the same image in chunks could yield: nothing is proven
    chunked = _gb10([replace(image, steps=(Step("comfyui", 600, 600, chunks=40),)), chat, later])
    assert unavoidable_steps(chunked) == set()


def test_the_lower_bound_needs_exclusive_residents():
    shared = replace(make("mixed", 1), residents=tuple(replace(r, exclusive=False, memory_gb=10)
                                                       for r in gb10_residents()))
    assert lower_bound_loads(shared) is None


def _gb10(sessions):
    return Trace("t", 0, 4 * 3600.0, tuple(sessions), gb10_residents(), {"sglang": 180.0, "comfyui": 30.0,
                                                                        "tts": 45.0},
                 {"sglang": 40.0, "comfyui": 8.0, "tts": 8.0})


def test_podcasts_hold_one_tts_lease_and_chat_is_closed_loop_with_auto_rooms():
    t = make("day", 1)
    pods = [s for s in t.sessions if s.kind in ("podcast", "briefing")]
    assert pods and all([st.resident for st in s.steps] == ["sglang", "tts"] for s in pods)
    chats = [s for s in t.sessions if s.kind.startswith("chat") and s.kind != "chat-image"]
    assert all(not s.declares_next for s in chats)
    assert any(len(s.steps) > 1 and s.steps[1].think_s > 0 for s in chats)
    assert {s.auto for s in chats} == {True, False}
    out = simulate(t, "sovhub")
    assert out["cloud_turns"] > 0  # auto rooms went to Claude while another resident held the GPU


def test_traces_are_seedable():
    assert make("mixed", 3) == make("mixed", 3)
    assert make("mixed", 3) != make("mixed", 4)


def test_cli_prints_one_json_object():
    proc = subprocess.run([sys.executable, "-m", "hub.cli", "bench", "gpu", "--trace", "bursty", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["trace"] == "bursty" and "sovhub" in data["policies"]


def test_cli_rejects_an_unknown_trace_clearly():
    proc = subprocess.run([sys.executable, "-m", "hub.cli", "bench", "gpu", "--trace", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "unknown trace 'nope'" in proc.stderr + proc.stdout
