"""`sovhub bench api`: what the gateway adds to a streamed turn, against calling SGLang directly.

The SGLang stand-in and the hub (chat + the `api` bridge, no scheduler: the lease is granted at
once) run as their own processes; this process is the client (httpx, streamed, as an SDK reads
it). Turns alternate between the hub and the stand-in, so drift on a shared machine hits both
alike. Reported: per-turn added time (hub minus direct, p50/p95 in ms) and time to first token of
each, with the ratio of the medians (goals: p50 added <= 2 ms, TTFT ratio <= 1.05).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import httpx

from hub.sim.serve import free_port

HUB = """
import asyncio, json, sys
from hub.config import load_config
from hub.core import Hub
from hub.serve import start_bridges, stop_bridges

async def main():
    overrides = json.loads(sys.argv[1])
    hub = await Hub.start(load_config(None, environ={}, overrides=overrides), components=("hub.chat.component",))
    started = await start_bridges(hub, only={"api"})
    print(hub.extras["api"].url, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await stop_bridges(hub, started)
        await hub.stop()

asyncio.run(main())
"""


async def _spawn(argv: list[str], env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
    if not line:
        raise RuntimeError(f"{argv[:3]} did not start")
    return proc, line


async def _wait_up(url: str) -> None:
    async with httpx.AsyncClient() as h:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if (await h.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


async def _turn(client: httpx.AsyncClient, url: str, tokens: int) -> tuple[float, float]:
    """(seconds to the first content token, seconds to the end) of one streamed turn."""
    body = {"model": "local", "stream": True, "max_tokens": tokens + 8,
            "messages": [{"role": "user", "content": f"[[tokens {tokens}]]"}]}
    began = time.perf_counter()
    first = None
    async with client.stream("POST", url + "/chat/completions", json=body) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if first is None and line.startswith("data: {") and '"content"' in line:
                first = time.perf_counter() - began
    return first or 0.0, time.perf_counter() - began


def _ms(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(1000 * values[min(len(values) - 1, int(q * len(values)))], 3)


async def _run(turns: int, tokens: int, tokens_per_s: float, first_token_delay: float, warmup: int) -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    port = free_port()
    sim_argv = [sys.executable, "-m", "hub.sim", "sglang", "--port", str(port),
                "--option", f"tokens_per_s={tokens_per_s}", "--option", f"first_token_delay={first_token_delay}"]
    sim = await asyncio.create_subprocess_exec(*sim_argv, stdout=asyncio.subprocess.DEVNULL,
                                               stderr=asyncio.subprocess.DEVNULL, env=env)
    direct = f"http://127.0.0.1:{port}/v1"
    hub_proc = None
    with tempfile.TemporaryDirectory(prefix="sovhub-bench-api-") as tmp:
        try:
            await _wait_up(f"http://127.0.0.1:{port}/health")
            overrides = {"storage": {"data_dir": tmp}, "matrix": {"enabled": False},
                         "api": {"port": 0}, "llm": {"local": {"base_url": direct, "max_retries": 0},
                                                     "cloud": {"enabled": False}}}
            hub_proc, gateway = await _spawn([sys.executable, "-c", HUB, json.dumps(overrides)], env)
            via_hub = gateway + "/v1"
            results: dict[str, dict[str, list[float]]] = {k: {"ttft": [], "total": []} for k in ("hub", "direct")}
            async with httpx.AsyncClient(timeout=60) as client:
                for _ in range(warmup):
                    await _turn(client, via_hub, tokens)
                    await _turn(client, direct, tokens)
                for i in range(turns):
                    order = (("hub", via_hub), ("direct", direct)) if i % 2 == 0 else (
                        ("direct", direct), ("hub", via_hub))
                    for name, url in order:
                        ttft, total = await _turn(client, url, tokens)
                        results[name]["ttft"].append(ttft)
                        results[name]["total"].append(total)
        finally:
            for proc in (hub_proc, sim):
                if proc is not None and proc.returncode is None:
                    proc.terminate()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(proc.wait(), 10)
    added = [h - d for h, d in zip(results["hub"]["total"], results["direct"]["total"], strict=True)]
    ttft_hub, ttft_direct = statistics.median(results["hub"]["ttft"]), statistics.median(results["direct"]["ttft"])
    return {
        "benchmark": "api",
        "turns": turns, "tokens_per_turn": tokens, "tokens_per_s": tokens_per_s,
        "first_token_delay_s": first_token_delay,
        "added_ms": {"p50": _ms(added, 0.5), "p95": _ms(added, 0.95)},
        "total_ms": {name: {"p50": _ms(r["total"], 0.5), "p95": _ms(r["total"], 0.95)} for name, r in results.items()},
        "ttft_ms": {name: {"p50": _ms(r["ttft"], 0.5), "p95": _ms(r["ttft"], 0.95)} for name, r in results.items()},
        "ttft_ratio_p50": round(ttft_hub / ttft_direct, 4) if ttft_direct else None,
        "goals": {"added_p50_ms": 2.0, "ttft_ratio": 1.05},
    }


def run(turns: int = 60, tokens: int = 64, tokens_per_s: float = 100.0, first_token_delay: float = 0.2,
        warmup: int = 5) -> dict[str, Any]:
    """Streamed turns of `tokens` tokens at SGLang-like pacing through the hub and directly, alternating."""
    return asyncio.run(_run(turns, tokens, tokens_per_s, first_token_delay, warmup))
