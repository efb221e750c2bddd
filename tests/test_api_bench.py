"""`sovhub bench api` runs end to end and reports what it promises (figures are for the bench, not here)."""

from __future__ import annotations

import asyncio

from bridges.api.bench import _run


async def test_bench_api_reports_added_time_and_ttft_of_hub_and_direct_turns():
    report = await asyncio.wait_for(_run(turns=2, tokens=4, tokens_per_s=0, first_token_delay=0, warmup=0), 120)
    assert report["benchmark"] == "api" and set(report["ttft_ms"]) == {"hub", "direct"}
    assert report["added_ms"]["p50"] is not None and report["ttft_ratio_p50"] > 0
