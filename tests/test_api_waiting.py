"""Swap-aware waiting: the gateway in front of the real resident scheduler with stand-in model servers
as processes (SGLang and ComfyUI; only one fits in the pool), the openai SDK as the client."""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx
import openai
import pytest
from pydantic import BaseModel

from hub.config import load_config
from hub.context import Context
from hub.core import Hub
from hub.jobs import SkillRun
from hub.registry import SkillRegistry, skill
from hub.serve import start_bridges, stop_bridges
from hub.sim import anthropic as anthropic_sim
from hub.sim.serve import AppServer, free_port
from tests.api_helpers import TOKENS, WRITER, cost_rows
from tests.test_gpu_runtime import sim_command
from tests.waiting import wait_until

GATE: dict[str, asyncio.Event] = {}


class Empty(BaseModel):
    pass


@skill(name="draw_long", description="Holds ComfyUI until the test releases it", params=Empty, result=Empty,
       resident="comfyui", est_seconds=20, timeout_s=120)
async def draw_long(run: SkillRun, params: Empty) -> Empty:
    await GATE["comfyui"].wait()
    return Empty()


def config(tmp_path, cloud_url: str, queue_limit: int | None = None, **api):
    sg_port, cf_port = free_port(), free_port()
    sg, cf = f"http://127.0.0.1:{sg_port}", f"http://127.0.0.1:{cf_port}"
    residents = {
        "pool": {"memory_gb": 100, "reserve_gb": 0}, "memory_guard": {"enabled": False}, "min_residency_s": 0,
        "monitor_interval_s": 0.5,
        "sglang": {"kind": "llm", "memory_gb": 90, "base_url": sg, "start_timeout_s": 20, "swap_seconds": 2,
                   "default": True,
                   "driver": {"type": "process", "command": sim_command("sglang", sg_port, delay=0.2,
                                                                        options=("tokens_per_s=50",))},
                   "ready": {"url": sg + "/health"}, "queue_limit": queue_limit},
        "comfyui": {"kind": "image", "memory_gb": 30, "base_url": cf, "start_timeout_s": 20, "swap_seconds": 1,
                    "concurrency": 1,
                    "driver": {"type": "process", "command": sim_command("comfyui", cf_port, delay=0.2)},
                    "ready": {"url": cf + "/system_stats"}},
    }
    return load_config(None, environ={}, overrides={
        "storage": {"data_dir": str(tmp_path)}, "residents": residents,
        "api": {"port": 0, "tokens": TOKENS, "keepalive_s": 0.3, **api},
        "llm": {"local": {"base_url": sg + "/v1", "max_retries": 0, "resident": "sglang"},
                "cloud": {"base_url": cloud_url, "api_key": "sk-test", "max_retries": 0}}})


@contextlib.asynccontextmanager
async def comfyui_holds_the_gpu(tmp_path, queue_limit: int | None = None, **api):
    """A hub whose GPU is held by a ComfyUI job until GATE['comfyui'] is set; yields (hub, gateway URL)."""
    GATE["comfyui"] = asyncio.Event()
    cloud = AppServer(anthropic_sim.create_app(api_key="sk-test"))
    await cloud.start()
    registry = SkillRegistry()
    registry.register(draw_long)
    hub = await Hub.start(config(tmp_path, cloud.url, queue_limit, **api), skills=registry,
                          components=("hub.gpu.component", "hub.chat.component"))
    started = await start_bridges(hub, only={"api"})
    try:
        job = await hub.start_skill("draw_long", {}, Context.new("cli"))
        await until(lambda: hub.gpu.snapshot().resident == "comfyui" and hub.gpu.snapshot().state == "busy")
        yield hub, hub.extras["api"].url
        GATE["comfyui"].set()
        await job.wait(timeout=30)
    finally:
        GATE["comfyui"].set()
        await stop_bridges(hub, started)
        await hub.stop()
        await cloud.stop()


async def until(check, timeout: float = 30.0) -> None:
    await wait_until(check, timeout=timeout, what="the gateway's requests to reach the expected state")


def api_jobs(hub) -> list[str]:
    return [q.job_id for q in hub.gpu.snapshot().queue if q.job_id.startswith("api-")]


async def test_local_request_while_comfyui_is_resident_streams_waiting_comments_then_answers_after_the_swap(
        tmp_path):
    async with comfyui_holds_the_gpu(tmp_path) as (hub, url):
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=WRITER, max_retries=0)
        comments, data = [], []

        async def ask():
            async with client.chat.completions.with_streaming_response.create(
                    model="local", messages=[{"role": "user", "content": "hello after the swap"}],
                    stream=True) as response:
                async for line in response.iter_lines():
                    if line:
                        (comments if line.startswith(":") else data).append(line)

        asking = asyncio.create_task(ask())
        await until(lambda: len(comments) >= 2)
        assert api_jobs(hub) and hub.gpu.snapshot().resident == "comfyui"
        assert comments[0].startswith(": waiting for sglang") and "ETA" in comments[0]
        GATE["comfyui"].set()
        await asyncio.wait_for(asking, 60)
        chunks = [json.loads(line[6:]) for line in data if line.startswith("data: {")]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        assert text == "You said: hello after the swap" and data[-1] == "data: [DONE]"
        assert hub.gpu.snapshot().resident == "sglang"
        rows = await cost_rows(hub)
        assert [(r["provider"], r["client"]) for r in rows] == [("local", "aider")]
        waits = hub.extras["api"].snapshot()["clients"]["aider"]["wait_s"]
        assert waits and waits[0] > 0.3
        await client.close()


async def test_full_queue_gets_429_with_retry_after_and_a_client_that_leaves_takes_its_place_with_it(tmp_path):
    async with comfyui_holds_the_gpu(tmp_path, max_waiting=1) as (hub, url):
        async with httpx.AsyncClient(timeout=30) as h:
            body = {"model": "local", "stream": True, "messages": [{"role": "user", "content": "first"}]}
            async with h.stream("POST", url + "/v1/chat/completions", json=body,
                                headers={"authorization": f"Bearer {WRITER}"}) as waiting:
                lines = waiting.aiter_lines()
                first = await anext(lines)
                assert first.startswith(": waiting for sglang")
                assert len(api_jobs(hub)) == 1

                client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=WRITER, max_retries=0)
                with pytest.raises(openai.RateLimitError) as refused:
                    await client.chat.completions.create(model="local",
                                                         messages=[{"role": "user", "content": "second"}])
                retry_after = int(refused.value.response.headers["retry-after"])
                assert retry_after >= 1
                await client.close()
            # the first client hung up while waiting: its place in the GPU queue is gone
            await until(lambda: not api_jobs(hub), timeout=10)
            assert hub.extras["api"].waiting == 0
            assert hub.gpu.snapshot().resident == "comfyui"


async def test_resident_is_not_swapped_out_under_a_streaming_answer(tmp_path):
    async with comfyui_holds_the_gpu(tmp_path) as (hub, url):
        GATE["comfyui"].set()  # the first picture ends; SGLang comes back as the default
        await until(lambda: hub.gpu.snapshot().resident == "sglang" and hub.gpu.snapshot().state == "ready")
        GATE["comfyui"] = asyncio.Event()
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=WRITER, max_retries=0)
        stream = await client.chat.completions.create(
            model="local", stream=True, messages=[{"role": "user", "content": "[[tokens 60]]"}])
        pieces = []
        async for c in stream:
            if c.choices and c.choices[0].delta.content:
                pieces.append(c.choices[0].delta.content)
                if len(pieces) == 3:  # mid-answer, a picture is asked for
                    picture = await hub.start_skill("draw_long", {}, Context.new("cli"))
                    GATE["comfyui"].set()
                assert hub.gpu.snapshot().resident == "sglang"
        assert len(pieces) >= 50
        assert any(q.job_class == "skill" for q in hub.gpu.snapshot().queue)  # the picture waited meanwhile
        await client.close()
        del picture


async def test_the_schedulers_full_queue_is_429_with_retry_after_streamed_or_not(tmp_path):
    """`GpuQueueFull` (the resident's `queue_limit`) reaches the SDK as a RateLimitError, with Retry-After
    from the scheduler's ETA, on a streamed request (before the stream begins) as on a plain one."""
    async with comfyui_holds_the_gpu(tmp_path, queue_limit=1) as (hub, url):
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=WRITER, max_retries=0)
        first = asyncio.create_task(client.chat.completions.create(
            model="local", messages=[{"role": "user", "content": "first"}]))
        await until(lambda: len(api_jobs(hub)) == 1)
        for stream in (True, False):
            with pytest.raises(openai.RateLimitError) as refused:
                await client.chat.completions.create(model="local", stream=stream,
                                                     messages=[{"role": "user", "content": "second"}])
            assert int(refused.value.response.headers["retry-after"]) >= 1
            assert "queue" in refused.value.message
        with pytest.raises(openai.RateLimitError):
            await client.completions.create(model="local", prompt="third", stream=True)
        assert len(api_jobs(hub)) == 1 and hub.extras["api"].waiting == 1
        GATE["comfyui"].set()
        answer = await asyncio.wait_for(first, 60)
        assert answer.choices[0].message.content == "You said: first"
        await client.close()
