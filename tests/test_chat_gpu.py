"""Chat turns against the real resident-model scheduler, with stand-in model servers as processes."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from hub.chat.api import ConversationKey, TurnRequest
from hub.config import load_config
from hub.context import Context
from hub.core import Hub
from hub.jobs import SkillRun
from hub.registry import SkillRegistry, skill
from hub.sim import anthropic as anthropic_sim
from hub.sim.serve import AppServer, free_port
from tests.chat_helpers import RecordingSink
from tests.test_gpu_runtime import sim_command
from tests.waiting import wait_until

GATE: dict[str, asyncio.Event] = {}


class Empty(BaseModel):
    pass


@skill(name="speak_long", description="Holds the TTS server until the test releases it", params=Empty,
       result=Empty, resident="tts", est_seconds=60, timeout_s=60)
async def speak_long(run: SkillRun, params: Empty) -> Empty:
    await GATE["tts"].wait()
    return Empty()


def config(tmp_path, cloud_url: str):
    sg_port, tts_port = free_port(), free_port()
    sg, tts = f"http://127.0.0.1:{sg_port}", f"http://127.0.0.1:{tts_port}"
    residents = {
        "pool": {"memory_gb": 100, "reserve_gb": 0}, "memory_guard": {"enabled": False}, "min_residency_s": 0,
        "monitor_interval_s": 0.5,
        "sglang": {"kind": "llm", "memory_gb": 90, "base_url": sg, "start_timeout_s": 20, "swap_seconds": 2,
                   "driver": {"type": "process", "command": sim_command("sglang", sg_port, delay=0.2)},
                   "ready": {"url": sg + "/health"}},
        "tts": {"kind": "tts", "memory_gb": 20, "base_url": tts, "start_timeout_s": 20, "swap_seconds": 1,
                "default": True, "concurrency": 1,
                "driver": {"type": "process", "command": sim_command("tts", tts_port, delay=0.2)},
                "ready": {"url": tts + "/v1/models"}},
    }
    return load_config(None, environ={}, overrides={
        "storage": {"data_dir": str(tmp_path)}, "residents": residents,
        "llm": {"local": {"base_url": sg + "/v1", "max_retries": 0, "resident": "sglang"},
                "cloud": {"base_url": cloud_url, "api_key": "sk-test", "max_retries": 0}}})


async def turn(hub: Hub, text: str, policy: str) -> tuple:
    sink = RecordingSink()
    req = TurnRequest(text=text, context=Context.new("matrix", user="@a:x"),
                      conversation=ConversationKey("matrix", f"!{policy}:x"), room_policy=policy)
    return await hub.chat.turn(req, sink), sink


@pytest.mark.slow  # starts processes: outside the fast tier
async def test_with_tts_holding_the_gpu_auto_goes_to_claude_and_local_only_queues_then_answers_locally(tmp_path):
    GATE["tts"] = asyncio.Event()
    cloud = AppServer(anthropic_sim.create_app(api_key="sk-test"))
    await cloud.start()
    registry = SkillRegistry()
    registry.register(speak_long)
    hub = await Hub.start(config(tmp_path, cloud.url), skills=registry,
                          components=("hub.gpu.component", "hub.chat.component"))
    try:
        job = await hub.start_skill("speak_long", {}, Context.new("cli"))
        await wait_until(lambda: hub.gpu.snapshot().state == "busy", timeout=20, what="the GPU busy with tts")
        assert hub.gpu.snapshot().resident == "tts"

        outcome, _ = await turn(hub, "hello from auto", "auto")
        assert outcome.route == "cloud" and "busy with tts" in outcome.reason

        waiting = asyncio.create_task(turn(hub, "hello from a private room", "local-only"))
        await wait_until(lambda: any(q.job_class == "interactive" for q in hub.gpu.snapshot().queue),
                         what="the private turn queued for the GPU")
        assert not waiting.done()
        GATE["tts"].set()
        outcome, sink = await asyncio.wait_for(waiting, 60)
        await job.wait(timeout=30)
        assert "busy with tts" in sink.of("notice")[0] and "ETA" in sink.of("notice")[0]
        assert outcome.route == "local" and sink.of("finish") == ["You said: hello from a private room"]
        assert hub.gpu.snapshot().resident == "sglang"
        assert cloud.app.state.sim.stats["requests"] == 1  # only the auto room's turn
    finally:
        await hub.stop()
        await cloud.stop()
