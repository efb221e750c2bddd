"""`sovhub bench gpu`: the simulated comparison of the sovhub policy with the baselines."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hub.bench import gpu
from hub.scheduler.model import Load, Phase, Unload
from hub.scheduler.simulator import simulate
from hub.scheduler.traces import make


@pytest.mark.parametrize("trace", ["mixed", "bursty", "image-batch"])
def test_bench_gpu_reports_every_policy_and_sovhub_meets_its_bounds(trace):
    out = gpu.run(trace=trace, seed=1)
    assert out["trace"] == trace and out["ok"] and out["stalls"] == 0
    assert {"sovhub", "llama_swap", "fifo", "ollama"} <= set(out["policies"])
    for figures in out["policies"].values():
        for key in ("swaps", "swap_s", "idle_while_queued_s", "jobs_done", "jobs_left", "stalled"):
            assert key in figures
        for key in ("wait_p50_s", "wait_p95_s", "wait_max_s", "bound_violations"):
            assert set(figures[key]) == {"interactive", "skill", "scheduled"}
    mine = out["policies"]["sovhub"]
    assert mine["jobs_left"] == 0 and mine["jobs_failed"] == 0 and mine["stalled"] is None
    assert mine["wait_within_bound"], mine["wait_max_s"]
    assert mine["idle_while_queued_s"] == 0


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

    from hub.cli.main import app
    from hub.scheduler import baselines

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


@pytest.mark.parametrize("trace", ["mixed", "bursty", "image-batch"])
def test_sovhub_keeps_every_bound_and_never_idles_on_forty_seeds(trace):
    for seed in range(1, 41):
        mine = simulate(make(trace, seed), "sovhub")
        assert mine["wait_within_bound"], (seed, mine["wait_max_s"])
        assert mine["idle_while_queued_s"] == 0, seed
        assert mine["stalled"] is None, seed
        assert mine["jobs_left"] == 0 and mine["jobs_failed"] == 0, seed


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
