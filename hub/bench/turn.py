"""`sovhub bench turn`: what the hub adds to a streamed local turn.

The same 256-token streamed request is made N times directly with the openai SDK and N times
through the hub (router + agent loop + memory + cost rows + a sink), against the same SGLang
stand-in on a real socket, interleaved (and alternating which goes first) so drift hits both.
Overhead is measured per pair (hub - direct), then summarised as percentiles, in wall-clock time
and in the hub process's CPU time (which other load on the machine does not inflate). A hub turn is timed
until `turn()` returns (the answer is finished at the sink); its write-behind to SQLite completes
before the next measurement starts, untimed. The stand-in runs
in its own process, as SGLang does, so its work does not compete with the hub's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

import openai

from hub.chat.api import ConversationKey, TurnRequest
from hub.config import load_config
from hub.context import Context
from hub.core import Hub
from hub.llm.local import to_openai_messages, to_openai_tools
from hub.llm.types import Message
from hub.registry import Permission, SkillRegistry
from hub.sim.serve import free_port


class _BufferSink:
    """What a bridge does at minimum: keep the streamed text."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    async def start(self) -> None:
        return None

    async def delta(self, text: str) -> None:
        self.parts.append(text)

    async def notice(self, text: str) -> None:
        return None

    async def finish(self, text: str) -> None:
        self.final = text

    async def fail(self, message: str) -> None:
        raise RuntimeError(f"bench turn failed: {message}")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@contextlib.asynccontextmanager
async def _standin() -> AsyncIterator[str]:
    """`python -m hub.sim sglang` on an ephemeral port, stopped with SIGTERM."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub.sim", "sglang", "--port", str(port), "--option", "decode_log_interval=1000000000",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            if not line:
                raise RuntimeError("the SGLang stand-in exited before listening")
            if b"listening on" in line:
                break
        drain = asyncio.create_task(proc.stdout.read())
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
        if "drain" in locals():
            await drain


async def measure(runs: int = 50, tokens: int = 256, warmup: int = 5) -> dict[str, Any]:
    data_dir = tempfile.mkdtemp(prefix="sovhub-bench-turn-")
    async with _standin() as url:
        config = load_config(None, environ={}, overrides={
            "storage": {"data_dir": data_dir},
            "llm": {"local": {"base_url": url + "/v1", "max_retries": 0}, "cloud": {"enabled": False}}})
        hub = await Hub.start(config, skills=SkillRegistry(), components=("hub.chat.component",), resume_jobs=False)
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="EMPTY", max_retries=0)
        text = f"[[tokens {tokens}]]"
        tools = to_openai_tools(hub.chat.toolbox.specs(Permission.write))
        messages = to_openai_messages([Message("system", config.llm.system_prompt), Message("user", text)])

        async def direct() -> tuple[float, float]:
            sink = _BufferSink()
            cpu = time.process_time()
            start = time.perf_counter()
            stream = await client.chat.completions.create(
                model=config.llm.local.model, messages=messages, tools=tools, stream=True,
                stream_options={"include_usage": True}, max_tokens=config.llm.local.max_tokens)
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    await sink.delta(chunk.choices[0].delta.content)
            elapsed = time.perf_counter() - start
            assert len(sink.parts) == tokens
            return elapsed, time.process_time() - cpu

        async def through_hub(i: int) -> tuple[float, float]:
            sink = _BufferSink()
            req = TurnRequest(text=text, context=Context.new("cli", user="bench"),
                              conversation=ConversationKey("bench", "room", f"run-{i}"), override="local")
            cpu = time.process_time()
            start = time.perf_counter()
            outcome = await hub.chat.turn(req, sink)
            elapsed = time.perf_counter() - start
            assert outcome.error is None and len(sink.parts) == tokens
            await hub.chat.settled()  # the turn's write-behind must not overlap the next measurement
            return elapsed, time.process_time() - cpu

        d_times: list[float] = []
        h_times: list[float] = []
        cpu_overhead: list[float] = []
        try:
            for i in range(warmup + runs):
                if i % 2:
                    h, d = await through_hub(i), await direct()
                else:
                    d, h = await direct(), await through_hub(i)
                if i >= warmup:
                    d_times.append(d[0] * 1000)
                    h_times.append(h[0] * 1000)
                    cpu_overhead.append((h[1] - d[1]) * 1000)
        finally:
            await client.close()
            await hub.stop()
    overhead = [h - d for h, d in zip(h_times, d_times, strict=True)]
    return {
        "runs": runs, "tokens": tokens,
        "direct_p50_ms": round(_pct(d_times, 0.5), 3), "direct_p99_ms": round(_pct(d_times, 0.99), 3),
        "hub_p50_ms": round(_pct(h_times, 0.5), 3), "hub_p99_ms": round(_pct(h_times, 0.99), 3),
        "overhead_p50_ms": round(_pct(overhead, 0.5), 3), "overhead_p99_ms": round(_pct(overhead, 0.99), 3),
        "overhead_mean_ms": round(statistics.fmean(overhead), 3),
        # CPU time the hub process spends on top of the SDK call (includes the store write): robust
        # against other load on the machine, unlike wall-clock percentiles
        "overhead_cpu_p50_ms": round(_pct(cpu_overhead, 0.5), 3),
        "overhead_cpu_p99_ms": round(_pct(cpu_overhead, 0.99), 3),
        "target": {"overhead_p50_ms": 2.0, "overhead_p99_ms": 10.0},
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def run(runs: int = 50, tokens: int = 256, warmup: int = 5) -> dict[str, Any]:
    """Interleaved direct-vs-hub streamed turns; one JSON-able dict of percentiles."""
    return asyncio.run(measure(runs=runs, tokens=tokens, warmup=warmup))
