"""Readiness: probe until the server answers, with a start timeout and stall detection, then warm up.

Stall detection: a server that is loading writes logs (weights, CUDA graphs); fresh output resets
the stall timer, so a slow but progressing start is never killed while a hung one is caught early.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx

from hub.errors import HubError
from hub.gpu.drivers.base import Driver


class StartFailed(HubError):
    pass


async def wait_ready(driver: Driver, url: str, status: int, *, start_timeout_s: float, stall_timeout_s: float,
                     poll_s: float = 0.5) -> float:
    """Seconds until `url` answered `status`; StartFailed with the reason and the log tail otherwise."""
    start = time.monotonic()
    last_progress = start
    checked = time.time()
    last = "no answer yet"
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=2.0)) as client:
        while True:
            try:
                r = await client.get(url)
                if r.status_code == status:
                    return time.monotonic() - start
                last = f"{url} answered {r.status_code}"
            except httpx.HTTPError as exc:
                last = f"{url}: {type(exc).__name__}"
            now = time.monotonic()
            if not await driver.is_running():
                raise StartFailed(f"{driver.name} exited while starting ({last}); last log lines:\n"
                                  f"{(await driver.tail(15)).strip()}")
            wall = time.time()
            try:
                fresh = await driver.output_since(checked)
            except HubError:
                fresh = ""
            if fresh.strip():
                last_progress = now
                checked = wall
            if now - start >= start_timeout_s:
                raise StartFailed(f"{driver.name} not ready after {start_timeout_s:.0f} s ({last})")
            if now - last_progress >= stall_timeout_s:
                raise StartFailed(f"{driver.name} stalled: no log output for {stall_timeout_s:.0f} s and "
                                  f"not ready ({last})")
            await asyncio.sleep(poll_s)


def tiny_comfy_graph(checkpoint: str | None) -> dict:
    """The smallest prompt that makes ComfyUI load its model (it loads lazily on the first prompt)."""
    if not checkpoint:
        return {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
                "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "warmup"}}}
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "warm-up", "clip": ["1", 1]}},
        "3": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "4": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0], "latent_image": ["3", 0],
            "seed": 0, "steps": 1, "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple", "denoise": 1.0}},
        "5": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["1", 2]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "warmup"}},
    }


async def warm_up(kind: str, base_url: str, timeout_s: float = 300.0) -> str:
    """One tiny real request so the first user job does not pay for lazy loading. Returns what ran."""
    base = base_url.rstrip("/")
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        try:
            if kind == "llm":
                models = (await client.get(base + "/v1/models")).json().get("data") or [{}]
                r = await client.post(base + "/v1/chat/completions", json={
                    "model": models[0].get("id", "default"), "max_tokens": 1,
                    "messages": [{"role": "user", "content": "Hi"}]})
                r.raise_for_status()
                return "1-token completion"
            if kind == "tts":
                models = (await client.get(base + "/v1/models")).json().get("data") or [{}]
                r = await client.post(base + "/v1/audio/speech", json={
                    "model": models[0].get("id"), "input": "Ready."})
                r.raise_for_status()
                return "one short sentence of speech"
            if kind == "image":
                return await _warm_comfy(client, base, timeout_s)
        except (httpx.HTTPError, ValueError) as exc:
            raise StartFailed(f"warm-up of {base} failed: {exc}") from exc
    return "none"


async def _warm_comfy(client: httpx.AsyncClient, base: str, timeout_s: float) -> str:
    info = (await client.get(base + "/object_info/CheckpointLoaderSimple")).json()
    names = (info.get("CheckpointLoaderSimple", {}).get("input", {}).get("required", {})
             .get("ckpt_name", [[]])[0])
    ckpt = names[0] if isinstance(names, list) and names else None
    r = await client.post(base + "/prompt", json={"prompt": tiny_comfy_graph(ckpt), "client_id": uuid.uuid4().hex})
    if r.status_code == 400 and ckpt:
        r = await client.post(base + "/prompt", json={"prompt": tiny_comfy_graph(None),
                                                      "client_id": uuid.uuid4().hex})
    r.raise_for_status()
    prompt_id = r.json()["prompt_id"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        h = (await client.get(f"{base}/history/{prompt_id}")).json()
        status = (h.get(prompt_id) or {}).get("status") or {}
        if status.get("completed"):
            return f"tiny prompt ({ckpt or 'no model'})"
        if status.get("status_str") == "error":
            raise StartFailed(f"ComfyUI warm-up prompt failed: {status.get('messages')}")
        await asyncio.sleep(0.2)
    raise StartFailed(f"ComfyUI warm-up prompt did not finish within {timeout_s:.0f} s")
