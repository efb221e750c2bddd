"""Shared pieces of the chat tests: stand-ins on real sockets, a hub with the chat component, a sink."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from hub.chat.api import ConversationKey, TurnRequest
from hub.config import load_config
from hub.context import Context
from hub.core import Hub
from hub.gpu.api import GpuSnapshot, Lease
from hub.sim import anthropic as anthropic_sim
from hub.sim import sglang
from hub.sim.serve import AppServer, free_port
from tests.helpers_skills import test_registry


class RecordingSink:
    """A ReplySink that keeps everything it is told, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    async def start(self) -> None:
        self.events.append(("start", ""))

    async def delta(self, text: str) -> None:
        self.events.append(("delta", text))

    async def notice(self, text: str) -> None:
        self.events.append(("notice", text))

    async def finish(self, text: str) -> None:
        self.events.append(("finish", text))

    async def fail(self, message: str) -> None:
        self.events.append(("fail", message))

    def of(self, kind: str) -> list[str]:
        return [t for k, t in self.events if k == kind]

    @property
    def streamed(self) -> str:
        return "".join(self.of("delta"))


@dataclass
class Bed:
    """The stand-ins and the hub of one test."""

    sglang: AppServer
    anthropic: AppServer
    data_dir: str
    overrides: dict[str, Any]
    hub: Hub | None = None
    dead_local: str = field(default_factory=lambda: f"http://127.0.0.1:{free_port()}/v1")

    async def start_hub(self, **extra: Any) -> Hub:
        config = load_config(None, overrides=_merge(self.overrides, extra), environ={})
        self.hub = await Hub.start(config, skills=test_registry(), components=("hub.chat.component",))
        return self.hub

    async def restart_hub(self) -> Hub:
        await self.hub.stop()
        return await self.start_hub()

    async def post(self, server: AppServer, path: str, body: dict) -> None:
        async with httpx.AsyncClient() as h:
            (await h.post(server.url + path, json=body)).raise_for_status()

    async def stats(self, server: AppServer) -> dict:
        async with httpx.AsyncClient() as h:
            return (await h.get(server.url + "/_sim/stats")).json()

    async def cloud_requests(self) -> int:
        return (await self.stats(self.anthropic))["requests"]

    async def local_requests(self) -> int:
        return (await self.stats(self.sglang))["requests"]

    async def turn(self, text: str, *, room: str = "!room:x", policy: str = "auto", override: str | None = None,
                   thread: str | None = None, sink: RecordingSink | None = None,
                   **kw: Any) -> tuple[Any, RecordingSink]:
        sink = sink if sink is not None else RecordingSink()
        req = TurnRequest(text=text, context=Context.new("matrix", user="@alice:x"),
                          conversation=ConversationKey("matrix", room, thread), room_policy=policy,
                          override=override, **kw)
        outcome = await self.hub.chat.turn(req, sink)
        return outcome, sink


def _merge(base: dict, extra: dict) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


@contextlib.asynccontextmanager
async def chat_bed(tmp_path, *, sglang_options: dict | None = None, local_alive: bool = True,
                   **config: Any) -> AsyncIterator[Bed]:
    sg = AppServer(sglang.create_app(**(sglang_options or {})))
    an = AppServer(anthropic_sim.create_app(api_key="sk-test"))
    await sg.start()
    await an.start()
    bed = Bed(sg, an, str(tmp_path), {})
    local_url = sg.url + "/v1" if local_alive else bed.dead_local
    bed.overrides = _merge({
        "storage": {"data_dir": str(tmp_path)},
        "llm": {"local": {"base_url": local_url, "max_retries": 0, "first_token_timeout_s": 5, "stall_timeout_s": 5},
                "cloud": {"base_url": an.url, "api_key": "sk-test", "max_retries": 0}},
    }, config)
    try:
        await bed.start_hub()
        yield bed
    finally:
        if bed.hub is not None:
            await bed.hub.stop()
        await sg.stop()
        await an.stop()


class HeldArbiter:
    """The scheduler's contract while another resident holds the GPU: an LLM lease waits its turn."""

    def __init__(self, holder: str = "comfyui", eta_s: float = 180.0) -> None:
        self.holder = holder
        self.eta_s = eta_s
        self.released = asyncio.Event()
        self.waiting = 0
        self.leases: list[dict] = []

    def snapshot(self) -> GpuSnapshot:
        if self.released.is_set():
            return GpuSnapshot(resident="sglang", state="ready", residents={"sglang": {}, self.holder: {}})
        return GpuSnapshot(resident=self.holder, state="busy", busy_with=["hero_image"],
                           residents={"sglang": {"eta_s": self.eta_s}, self.holder: {}})

    @contextlib.asynccontextmanager
    async def lease(self, resident: str, **kw: Any) -> AsyncIterator[Lease]:
        self.leases.append({"resident": resident, **kw})
        self.waiting += 1
        try:
            await self.released.wait()
        finally:
            self.waiting -= 1
        yield Lease(resident=resident)
