"""A hub with the status bridge on an ephemeral port, for the status page and metrics tests."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from hub.config import load_config
from hub.core import COMPONENTS, Hub
from hub.serve import start_bridges, stop_bridges
from hub.sim.serve import free_port
from tests.helpers_skills import test_registry


def sim_residents(load_seconds: float = 0.3) -> dict[str, Any]:
    """Two stand-in model servers as real processes that the scheduler starts and stops:
    an SGLang stand-in (the default, 94 GB) and a ComfyUI stand-in (40 GB) that cannot share the pool."""
    llm, image = free_port(), free_port()
    py = [sys.executable, "-m", "hub.sim"]
    common = {"warmup": False, "start_timeout_s": 60, "stall_timeout_s": 60, "stop_timeout_s": 5, "swap_seconds": 2}
    return {
        "pool": {"memory_gb": 128, "reserve_gb": 8}, "min_residency_s": 0, "memory_guard": {"enabled": False},
        "sglang": {"kind": "llm", "memory_gb": 94, "base_url": f"http://127.0.0.1:{llm}", "default": True,
                   "driver": {"type": "process", "command": [*py, "sglang", "--port", str(llm),
                                                             "--option", f"load_seconds={load_seconds}"]},
                   "ready": {"url": f"http://127.0.0.1:{llm}/health"}, **common},
        "comfyui": {"kind": "image", "memory_gb": 40, "base_url": f"http://127.0.0.1:{image}",
                    "driver": {"type": "process", "command": [*py, "comfyui", "--port", str(image)]},
                    "ready": {"url": f"http://127.0.0.1:{image}/system_stats"}, **common},
    }


async def _stop_process_residents(scheduler: Any) -> None:
    """The scheduler leaves residents running for the next start to adopt: tests stop them, through
    the scheduler's own drivers (they hold the child processes, so stopped ones are reaped)."""
    from hub.gpu.drivers import ProcessDriver

    for driver in getattr(scheduler, "drivers", {}).values():
        if isinstance(driver, ProcessDriver):
            await driver.stop(5)


@contextlib.asynccontextmanager
async def status_hub(data_dir: Path, *, token: str | None = None, residents: dict[str, Any] | None = None,
                     scheduler: bool = False, chat: bool = False,
                     llm: dict[str, Any] | None = None) -> AsyncIterator[tuple[Hub, str]]:
    """Start a hub (test skills, real SQLite) with only the status bridge; yields (hub, page URL).
    `scheduler=True` also starts the resident-model scheduler for the configured residents,
    `chat=True` the chat service (with `llm` overrides pointing at stand-ins)."""
    overrides: dict[str, Any] = {
        "storage": {"data_dir": str(data_dir)},
        "status": {"host": "127.0.0.1", "port": 0, "token": token},
        "matrix": {"enabled": False},
    }
    if residents:
        overrides["residents"] = residents
    if llm:
        overrides["llm"] = llm
    config = load_config(None, environ={}, overrides=overrides)
    wanted = {"hub.gpu.component"} if scheduler else set()
    wanted |= {"hub.chat.component"} if chat else set()
    components = tuple(c for c in COMPONENTS if c in wanted)
    hub = await Hub.start(config, skills=test_registry(), components=components)
    started = []
    scheduler = hub.extras.get("gpu_scheduler")
    try:
        started = await start_bridges(hub, only={"status"})
        assert [name for name, _ in started] == ["status"]
        yield hub, hub.extras["status_page"].url
    finally:
        await stop_bridges(hub, started)
        await hub.stop()
        await _stop_process_residents(scheduler)


async def add_cost(hub: Hub, usd: float, at: float | None = None) -> None:
    """A cloud cost row as the chat service writes it (the costs table is the spend's record)."""
    await hub.store.db.execute(
        "INSERT INTO costs(at, provider, model, input_tokens, output_tokens, usd, origin) VALUES (?,?,?,?,?,?,?)",
        (at or time.time(), "anthropic", "claude-sonnet-4-5", 1000, 200, usd, "cli"))
    await hub.store.db.commit()
