"""`sovhub bench gpu`: the simulated comparison of the sovhub policy with the baselines."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hub.bench import gpu
from hub.scheduler.simulator import simulate
from hub.scheduler.traces import make


@pytest.mark.parametrize("trace", ["mixed", "bursty", "image-batch"])
def test_bench_gpu_reports_every_policy_and_sovhub_meets_its_bounds(trace):
    out = gpu.run(trace=trace, seed=1)
    assert out["trace"] == trace
    assert {"sovhub", "llama_swap", "fifo", "ollama", "llama_swap_fairshare"} <= set(out["policies"])
    for figures in out["policies"].values():
        for key in ("swaps", "swap_seconds", "gpu_idle_while_queued_s", "jobs_done"):
            assert key in figures
        for key in ("wait_p50_s", "wait_p95_s", "wait_max_s"):
            assert set(figures[key]) == {"interactive", "skill", "scheduled"}
    mine = out["policies"]["sovhub"]
    assert mine["jobs_left"] == 0 and mine["jobs_failed"] == 0
    assert mine["wait_within_bound"], mine["wait_max_s"]
    assert mine["gpu_idle_while_queued_s"] == 0


def test_sovhub_swaps_at_most_six_tenths_of_llama_swap_on_mixed():
    out = gpu.run(trace="mixed", seed=1)
    assert out["targets"]["swaps_vs_llama_swap"] <= 0.6


@pytest.mark.parametrize("trace", ["mixed", "bursty", "image-batch"])
def test_sovhub_keeps_every_bound_and_never_idles_on_forty_seeds(trace):
    for seed in range(1, 41):
        mine = simulate(make(trace, seed), "sovhub")
        assert mine["wait_within_bound"], (seed, mine["wait_max_s"])
        assert mine["gpu_idle_while_queued_s"] == 0, seed
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
