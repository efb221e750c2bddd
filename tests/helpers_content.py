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
