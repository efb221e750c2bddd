"""`sovhub bench turn` runs end to end and reports the figures the issue asks for (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_turn_prints_one_json_object_with_the_overhead_percentiles():
    out = subprocess.run([sys.executable, "-m", "hub.cli", "bench", "turn", "--runs", "3", "--tokens", "16",
                          "--warmup", "0", "--json"], capture_output=True, text=True, timeout=120)
    result = json.loads(out.stdout)
    # a missed goal exits 1 with the figures (three runs are too few to hold the goals)
    assert out.returncode == (0 if result["ok"] else 1)
    assert result["runs"] == 3 and result["tokens"] == 16 and result["rounds"] == 3
    assert set(result["spread"]) >= {"overhead_cpu_p50_ms", "overhead_cpu_p99_ms"} and "loadavg_1m" in result
    assert result["missed"] == [] or not result["ok"]
    for key in ("direct_p50_ms", "hub_p50_ms", "overhead_p50_ms", "overhead_p99_ms"):
        assert isinstance(result[key], float)


def test_bench_all_runs_the_quick_benches_into_one_summary_and_exits_1_on_a_missed_goal():
    out = subprocess.run([sys.executable, "-m", "hub.cli", "bench", "all", "--only", "turn,gpu", "--scale", "0.05",
                          "--json"], capture_output=True, text=True, timeout=240)
    result = json.loads(out.stdout)
    assert result["turn"]["bench"] == "turn" and "ok" in result["gpu"]
    assert out.returncode == (0 if result["ok"] else 1) and result["ok"] == (not result["missed"])
    assert all(m.split(":")[0] in ("turn", "gpu") for m in result["missed"])
