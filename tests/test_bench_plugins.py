"""`sovhub bench plugins` runs end to end and reports each figure next to its baseline."""

from __future__ import annotations

from hub.bench.plugins import run


async def test_the_plugins_bench_reports_registry_and_web_search_figures_with_ratios():
    result = await run(plugins=3, rounds=2, searches=3)
    registry, web = result["registry"], result["web_search"]
    assert registry["plugins"] == 3 and registry["skills"] >= 3 and registry["ratio_with_plugins_vs_built_in"] > 0
    assert web["searches"] == 3 and web["hub_p50_ms"] > 0 and web["ratio_hub_vs_client"] > 0
