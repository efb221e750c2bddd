"""`sovhub bench startup` measures a real `sovhub run` and a real `sovhub mcp` (stdio), as processes."""

from __future__ import annotations

import pytest

from hub.bench.startup import run


@pytest.mark.slow
def test_bench_startup_reports_ready_time_cpu_idle_rss_and_mcp_initialize_beside_a_python_baseline():
    out = run(rounds=1, idle_s=0.5, timeout_s=120)
    assert out["run_ready_s"] > out["baseline_python_s"] > 0
    assert 20 < out["run_idle_rss_mb"] < 2000
    assert out["mcp_initialize_s"] > 0
    assert 0 < out["run_ready_cpu_s"] < 60 and 0 < out["mcp_initialize_cpu_s"] < 60
    assert out["run_ready_cpu_wait_s"] >= 0 and 0 < out["run_ready_without_cpu_wait_s"] <= out["run_ready_s"]
    assert out["mcp_initialize_cpu_wait_s"] >= 0
    assert isinstance(out["meets_goal"], bool) and out["goal"] == {"ready_s": 2.0, "idle_rss_mb": 150.0}
