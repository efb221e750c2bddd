"""`sovhub bench plugins`: what plugins and web search cost, each next to its baseline in the same run.

registry: building the hub's registry (`hub.plugins.load_registry`) with the built-ins only, and with
P generated folder plugins added (import, checks, clash policy); first build and warm rebuilds.
web_search: N searches against the SearXNG stand-in through the hub (validation, job row, events)
next to N calls of the bare client and N raw HTTP GETs, interleaved; the hub's share is the
per-round difference.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from hub.config import load_config
from hub.context import Context
from hub.core import Hub
from hub.plugins import load_registry
from hub.registry import SkillRegistry
from hub.sim import searxng
from hub.sim.serve import serve_app
from skills.web.searxng import search
from skills.web.web_search import web_search

PLUGIN = '''
from pydantic import BaseModel, Field
from hub.registry import skill

class P(BaseModel):
    text: str = Field(description="input")
    n: int = Field(1, ge=1, le=10)

class R(BaseModel):
    out: str

@skill(name="bench_{i}", description="Generated bench plugin {i}", params=P, result=R)
async def bench_{i}(run, params: P) -> R:
    return R(out=params.text * params.n)
'''


def _ms(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 3)


def _registry(plugins: int, rounds: int, root: Path) -> dict[str, Any]:
    folder = root / "plugins"
    folder.mkdir()
    for i in range(plugins):
        (folder / f"bench_{i}.py").write_text(PLUGIN.format(i=i))
    overrides = {"storage": {"data_dir": str(root / "data")}}
    bare = load_config(None, environ={}, overrides=overrides)
    with_plugins = load_config(None, environ={}, overrides={**overrides, "skills": {"paths": [str(folder)]}})
    t0 = time.perf_counter()
    first = load_registry(with_plugins)
    first_s = time.perf_counter() - t0
    assert len(first.problems) == 0 and f"bench_{plugins - 1}" in first
    built_in, plugged = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        load_registry(bare)
        built_in.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        load_registry(with_plugins)
        plugged.append(time.perf_counter() - t0)
    b, p = statistics.median(built_in), statistics.median(plugged)
    return {"plugins": plugins, "skills": len(first), "first_build_with_plugins_ms": round(first_s * 1000, 2),
            "built_in_only_p50_ms": round(b * 1000, 3), "with_plugins_p50_ms": round(p * 1000, 3),
            "per_plugin_warm_ms": round((p - b) * 1000 / max(plugins, 1), 4),
            "ratio_with_plugins_vs_built_in": round(p / b, 2) if b else None}


async def _web(searches: int, root: Path) -> dict[str, Any]:
    async with serve_app(searxng.create_app()) as url:
        config = load_config(None, environ={}, overrides={"storage": {"data_dir": str(root / "web")},
                                                          "skills": {"web": {"searxng_url": url}}})
        registry = SkillRegistry()
        registry.register(web_search)
        hub = await Hub.start(config, skills=registry, components=(), resume_jobs=False)
        raw, client, through = [], [], []
        query = {"q": "EAGLE speculative decoding", "format": "json"}
        try:
            async with httpx.AsyncClient() as http:
                for _ in range(searches):
                    t0 = time.perf_counter()
                    (await http.get(url + "/search", params=query)).json()
                    raw.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    await search(config.skills.web, query["q"])
                    client.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    await hub.run_skill("web_search", {"query": query["q"]}, Context.new("cli"))
                    through.append(time.perf_counter() - t0)
        finally:
            await hub.stop()
    share = [h - c for h, c in zip(through, client, strict=True)]
    return {"searches": searches, "raw_get_p50_ms": _ms(raw, 0.5), "client_p50_ms": _ms(client, 0.5),
            "hub_p50_ms": _ms(through, 0.5), "hub_p95_ms": _ms(through, 0.95),
            "hub_share_p50_ms": _ms(share, 0.5),
            "ratio_hub_vs_client": round(statistics.median(through) / statistics.median(client), 2)}


async def run(plugins: int = 20, rounds: int = 20, searches: int = 30) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="sovhub-bench-plugins-"))
    try:
        return {"registry": _registry(plugins, rounds, root), "web_search": await _web(searches, root)}
    finally:
        shutil.rmtree(root, ignore_errors=True)
