"""Read-only HTTP probes of an SGLang server's native endpoints (one call each, in parallel)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Answer:
    """One endpoint's outcome: an HTTP answer (status, body) or a transport error."""

    path: str
    status: int | None = None
    body: Any = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def answered(self) -> bool:
        return self.status is not None


@dataclass
class HttpProbe:
    url: str
    health: Answer
    server_info: Answer
    model_info: Answer
    loads: Answer
    metrics: Answer

    @property
    def reachable(self) -> bool:
        return any(a.answered for a in (self.health, self.server_info, self.model_info, self.loads, self.metrics))


async def _get(client: httpx.AsyncClient, path: str, timeout: float, as_json: bool) -> Answer:
    started = time.monotonic()
    try:
        resp = await client.get(path, timeout=timeout)
    except httpx.TimeoutException:
        return Answer(path, error=f"no answer within {timeout:g} s", seconds=time.monotonic() - started)
    except httpx.HTTPError as exc:
        return Answer(path, error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                      seconds=time.monotonic() - started)
    body: Any = resp.text
    if as_json and resp.status_code == 200:
        try:
            body = resp.json()
        except ValueError:
            body = None
    return Answer(path, status=resp.status_code, body=body, seconds=time.monotonic() - started)


async def _first(client: httpx.AsyncClient, paths: tuple[str, ...], timeout: float, as_json: bool = True) -> Answer:
    """The first of `paths` that exists (newer SGLang names first, older aliases after a 404)."""
    answer = Answer(paths[0], error="not tried")
    for path in paths:
        answer = await _get(client, path, timeout, as_json)
        if answer.status != 404:
            return answer
    return answer


async def probe(url: str, *, api_key: str | None = None, timeout: float = 5.0,
                health_timeout: float = 25.0) -> HttpProbe:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers) as client:
        health, server_info, model_info, loads, metrics = await asyncio.gather(
            _get(client, "/health", health_timeout, as_json=False),
            _first(client, ("/server_info", "/get_server_info"), timeout),
            _first(client, ("/model_info", "/get_model_info"), timeout),
            _first(client, ("/v1/loads", "/get_load"), timeout),
            _get(client, "/metrics", timeout, as_json=False),
        )
    return HttpProbe(url, health, server_info, model_info, loads, metrics)
