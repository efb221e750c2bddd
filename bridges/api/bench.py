"""`sovhub bench api`: what the gateway adds to a streamed turn, against calling SGLang directly.

The SGLang stand-in and the hub (chat + the `api` bridge, a bearer token; without `--scheduler`
no scheduler: the lease is granted at once) run as their own processes; this process is the client (httpx, streamed, as
an SDK reads it). Turns alternate between the hub and the stand-in, so drift on a shared machine
hits both alike, in rounds (hub/bench/rounds.py: the median round is judged, the spread shown).

Per round: the added wall time per turn (hub minus the direct turn next to it, p50/p95 in ms),
time to first token of each and their ratio, and the CPU time per turn of each process: the
hub's (`hub_cpu_ms_per_turn`, all of it proxy work, the figure to optimise on a loaded machine,
since it does not depend on what else runs), the stand-in's and the client's (hub turns vs direct
turns). Each child process reports its own `time.process_time()` when asked on stdin.
Goals: p50 added <= 2 ms, TTFT ratio <= 1.05.
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

from hub.bench.rounds import Clock, load, summarise

TOKEN = "bench-" + "t" * 26

CHILD = """
import asyncio, json, sys, time

async def serve_hub(options):
    from hub.config import load_config
    from hub.core import Hub
    from hub.serve import start_bridges, stop_bridges
    components = ("hub.gpu.component", "hub.chat.component") if options.get("residents") else ("hub.chat.component",)
    hub = await Hub.start(load_config(None, environ={}, overrides=options), components=components)
    started = await start_bridges(hub, only={"api"})
    async def stop():
        await stop_bridges(hub, started)
        await hub.stop()
    return hub.extras["api"].url, stop

async def serve_sim(options):
    from hub.sim import sglang
    from hub.sim.serve import AppServer
    server = AppServer(sglang.create_app(**options))
    await server.start()
    return server.url, server.stop

async def main():
    kind, options = sys.argv[1], json.loads(sys.argv[2])
    url, stop = await (serve_hub if kind == "hub" else serve_sim)(options)
    print(url, flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while (line := await reader.readline()).strip() == b"cpu":  # EOF or anything else: stop
        print(time.process_time(), flush=True)
    await stop()

asyncio.run(main())
"""

GOALS = {"added_p50_ms": ("max", 2.0), "ttft_ratio": ("max", 1.05)}


class Child:
    """A server process (the hub or the stand-in) that tells its CPU time when asked."""

    def __init__(self, proc: asyncio.subprocess.Process, url: str) -> None:
        self.proc, self.url = proc, url

    @classmethod
    async def start(cls, kind: str, options: dict[str, Any]) -> Child:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, kind, json.dumps(options), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env)
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
        if not line.startswith("http"):
            proc.kill()
            raise RuntimeError(f"the {kind} process did not start")
        return cls(proc, line)

    async def cpu(self) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"cpu\n")
        await self.proc.stdin.drain()
        return float((await asyncio.wait_for(self.proc.stdout.readline(), 30)).decode())

    async def stop(self) -> None:
        if self.proc.returncode is not None:
            return
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def _turn(client: httpx.AsyncClient, url: str, tokens: int, headers: dict[str, str]) -> tuple[float, float]:
    """(seconds to the first content token, seconds to the end) of one streamed turn."""
    body = {"model": "local", "stream": True, "max_tokens": tokens + 8,
            "messages": [{"role": "user", "content": f"[[tokens {tokens}]]"}]}
    began = time.perf_counter()
    first = None
    async with client.stream("POST", url + "/chat/completions", json=body, headers=headers) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if first is None and line.startswith("data: {") and '"content"' in line:
                first = time.perf_counter() - began
    return first or 0.0, time.perf_counter() - began


def _ms(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(1000 * values[min(len(values) - 1, int(q * len(values)))], 3)


async def _round(client: httpx.AsyncClient, hub: Child, sim: Child, targets: dict[str, tuple[str, dict]],
                 turns: int, tokens: int) -> dict[str, Any]:
    times: dict[str, dict[str, list[float]]] = {k: {"ttft": [], "total": [], "cpu": []} for k in targets}
    hub_cpu, sim_cpu = await hub.cpu(), await sim.cpu()
    for i in range(turns):
        for name in (("hub", "direct") if i % 2 == 0 else ("direct", "hub")):
            url, headers = targets[name]
            cpu = time.process_time()
            ttft, total = await _turn(client, url, tokens, headers)
            times[name]["cpu"].append(time.process_time() - cpu)
            times[name]["ttft"].append(ttft)
            times[name]["total"].append(total)
    hub_cpu, sim_cpu = await hub.cpu() - hub_cpu, await sim.cpu() - sim_cpu
    added = [h - d for h, d in zip(times["hub"]["total"], times["direct"]["total"], strict=True)]
    ttft = {k: statistics.median(v["ttft"]) for k, v in times.items()}
    return {
        "added_p50_ms": _ms(added, 0.5), "added_p95_ms": _ms(added, 0.95),
        "ttft_hub_p50_ms": round(1000 * ttft["hub"], 3), "ttft_direct_p50_ms": round(1000 * ttft["direct"], 3),
        "ttft_ratio": round(ttft["hub"] / ttft["direct"], 4) if ttft["direct"] else 0.0,
        "total_hub_p50_ms": _ms(times["hub"]["total"], 0.5), "total_direct_p50_ms": _ms(times["direct"]["total"], 0.5),
        "hub_cpu_ms_per_turn": round(1000 * hub_cpu / turns, 3),
        "sim_cpu_ms_per_turn": round(1000 * sim_cpu / (2 * turns), 3),
        "client_cpu_ms_per_turn_hub": round(1000 * statistics.mean(times["hub"]["cpu"]), 3),
        "client_cpu_ms_per_turn_direct": round(1000 * statistics.mean(times["direct"]["cpu"]), 3),
    }


async def _run(turns: int, rounds: int, tokens: int, tokens_per_s: float, first_token_delay: float,
               warmup: int, scheduler: bool = False) -> dict[str, Any]:
    clock = Clock()
    rounds = max(1, rounds)
    per = max(1, turns // rounds)
    children: list[Child] = []
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sovhub-bench-api-") as tmp:
        try:
            sim = await Child.start("sim", {"tokens_per_s": tokens_per_s, "first_token_delay": first_token_delay})
            children.append(sim)
            direct = sim.url + "/v1"
            overrides = {"storage": {"data_dir": tmp}, "matrix": {"enabled": False},
                         "api": {"port": 0, "tokens": [{"name": "bench", "token": TOKEN, "role": "write"}]},
                         "llm": {"local": {"base_url": direct, "max_retries": 0, "resident": "sglang"},
                                 "cloud": {"enabled": False}}}
            if scheduler:  # the real GPU scheduler, which adopts the running stand-in as its resident
                overrides["residents"] = {
                    "pool": {"memory_gb": 100, "reserve_gb": 0}, "memory_guard": {"enabled": False},
                    "sglang": {"kind": "llm", "memory_gb": 90, "base_url": sim.url, "default": True,
                               "driver": {"type": "http_release", "release": "sglang"},
                               "ready": {"url": sim.url + "/health"}}}
            hub = await Child.start("hub", overrides)
            children.append(hub)
            targets = {"hub": (hub.url + "/v1", {"authorization": f"Bearer {TOKEN}"}), "direct": (direct, {})}
            async with httpx.AsyncClient(timeout=60) as client:
                for _ in range(warmup):
                    for url, headers in targets.values():
                        await _turn(client, url, tokens, headers)
                for _ in range(rounds):
                    results.append(await _round(client, hub, sim, targets, per, tokens))
        finally:
            for child in reversed(children):
                await child.stop()
    return {"bench": "api", "benchmark": "api", "scheduler": scheduler, "turns_each_round": per,
            "tokens_per_turn": tokens, "tokens_per_s": tokens_per_s, "first_token_delay_s": first_token_delay,
            **summarise(results, rank="added_p50_ms", goals=GOALS), **load(), **clock.figures()}


def run(turns: int = 60, rounds: int = 3, tokens: int = 64, tokens_per_s: float = 100.0,
        first_token_delay: float = 0.2, warmup: int = 5, scheduler: bool = False) -> dict[str, Any]:
    """Streamed turns of `tokens` tokens at SGLang-like pacing through the hub and directly, alternating,
    `turns` of each split over `rounds` rounds. `--scheduler true`: each hub turn also takes a lease
    from the real GPU scheduler (the stand-in adopted as the ready `sglang` resident), as on the box."""
    return asyncio.run(_run(turns, rounds, tokens, tokens_per_s, first_token_delay, warmup, scheduler))
