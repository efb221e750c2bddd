"""Shared set-up for the content-skill tests: a hub whose residents are the real stand-in servers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from hub.config.model import HubConfig
from hub.core import Hub
from hub.registry import SkillRegistry
from hub.sim.serve import serve_app


def resident(kind: str, url: str, probe: str, memory_gb: float) -> dict[str, Any]:
    return {
        "kind": kind,
        "memory_gb": memory_gb,
        "base_url": url,
        "ready": {"url": url + probe},
        "driver": {"type": "process", "command": ["true"]},
    }


def content_config(
    tmp_path: Path, *, comfyui: str | None = None, sglang: str | None = None, tts: str | None = None, **content: Any
) -> dict[str, Any]:
    residents: dict[str, Any] = {"memory_guard": {"enabled": False}}
    if comfyui:
        residents["comfyui"] = resident("image", comfyui, "/system_stats", 32)
    if sglang:
        residents["sglang"] = resident("llm", sglang, "/health", 94)
    if tts:
        residents["vllm-omni"] = resident("tts", tts, "/v1/models", 24)
    llm = {"local": {"base_url": (sglang or "http://127.0.0.1:9") + "/v1", "model": "mistral-small-4"}}
    return {
        "storage": {"data_dir": str(tmp_path / "data")},
        "residents": residents,
        "llm": llm,
        "skills": {"content": content},
    }


@contextlib.asynccontextmanager
async def content_hub(config: dict[str, Any], components: tuple[str, ...] = ()) -> AsyncIterator[Hub]:
    registry = SkillRegistry()
    registry.discover("skills.content")
    hub = await Hub.start(HubConfig.model_validate(config), skills=registry, components=components, resume_jobs=False)
    try:
        yield hub
    finally:
        await hub.stop()


@contextlib.asynccontextmanager
async def stand_in(module, **options: Any) -> AsyncIterator[str]:
    async with serve_app(module.create_app(**options)) as url:
        yield url


def sim_process(name: str, port: int, **options: Any) -> list[str]:
    """`python -m hub.sim NAME --port N --option k=v ...`: a stand-in as a child process (process driver)."""
    import json
    import sys

    argv = [sys.executable, "-m", "hub.sim", name, "--port", str(port)]
    for key, value in options.items():
        argv += ["--option", f"{key}={json.dumps(value)}"]
    return argv


def process_residents(commands: dict[str, tuple[str, str, str, list[str]]]) -> dict[str, Any]:
    """Residents run by the real scheduler's process driver; any two of them overflow the pool."""
    residents: dict[str, Any] = {
        "pool": {"memory_gb": 100, "reserve_gb": 0},
        "memory_guard": {"enabled": False},
        "monitor_interval_s": 0.5,
    }
    for name, (kind, url, probe, command) in commands.items():
        residents[name] = {
            "kind": kind,
            "memory_gb": 60,
            "base_url": url,
            "default": kind == "llm",
            "driver": {"type": "process", "command": command},
            "ready": {"url": url + probe},
            "start_timeout_s": 30,
            "swap_seconds": 2,
        }
    return residents
