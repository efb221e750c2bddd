"""`sovhub bench api` runs end to end and reports what it promises (figures are for the bench, not here)."""

from __future__ import annotations

import asyncio

from bridges.api.bench import _run


async def test_bench_api_reports_rounds_added_time_ttft_and_cpu_per_turn_of_each_process():
    report = await asyncio.wait_for(_run(turns=4, rounds=2, tokens=4, tokens_per_s=0, first_token_delay=0,
                                         warmup=0), 120)
    assert report["bench"] == "api" and report["rounds"] == 2 and report["turns_each_round"] == 2
    assert set(report["goals"]) == {"added_p50_ms", "ttft_ratio"} and isinstance(report["ok"], bool)
    assert report["hub_cpu_ms_per_turn"] > 0 and report["sim_cpu_ms_per_turn"] > 0
    assert report["ttft_ratio"] > 0 and "added_p50_ms" in report["spread"]
    assert {"loadavg_1m", "wall_s", "cpu_s"} <= set(report)
