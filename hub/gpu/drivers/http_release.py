"""Opt-in `http_release`: keep the server process, release and resume its memory over HTTP.

SGLang `release_memory_occupation` / `resume_memory_occupation`, vLLM `sleep?level=2` / `wake_up`,
ComfyUI `/free`. These APIs have open bugs on the GB10 (and "CPU" offload frees nothing on unified
memory), so after every wake a known-answer request must succeed before the resident counts as back.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time

import httpx

from hub.gpu.drivers.base import DriverError

RELEASE = {
    "sglang": ("/release_memory_occupation", {}, "/resume_memory_occupation", {}),
    "vllm": ("/sleep?level=2", None, "/wake_up", None),
    "comfyui": ("/free", {"unload_models": True, "free_memory": True}, None, None),
}


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every call: httpx builds one per client otherwise, loading the CA store
    (about 30 ms of CPU), and `is_running` is asked at every lease dispatch."""
    return ssl.create_default_context()


class HttpReleaseDriver:
    def __init__(self, name: str, base_url: str, flavor: str, *, timeout: float = 600.0) -> None:
        if flavor not in RELEASE:
            raise DriverError(f"{name}: unknown release flavor {flavor!r} (known: {', '.join(RELEASE)})")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.flavor = flavor
        self.timeout = timeout
        self._log: list[tuple[float, str]] = []
        self._probe: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None

    async def _post(self, path: str, body) -> httpx.Response:
        async with httpx.AsyncClient(timeout=self.timeout, verify=_tls()) as client:
            try:
                r = await client.post(self.base_url + path, json=body)
            except httpx.HTTPError as exc:
                raise DriverError(f"{self.name}: POST {path} failed: {exc}") from exc
        self._log.append((time.time(), f"POST {path} -> {r.status_code}"))
        if r.status_code >= 400:
            raise DriverError(f"{self.name}: POST {path} answered {r.status_code}: {r.text[:200]}")
        return r

    async def start(self) -> None:
        path, body = RELEASE[self.flavor][2:]
        if path:
            await self._post(path, body)
        await self.known_answer()

    async def stop(self, timeout: float) -> None:
        path, body = RELEASE[self.flavor][:2]
        await self._post(path, body)

    async def known_answer(self) -> None:
        """A request whose answer we know must succeed after a wake (release/resume bugs)."""
        async with httpx.AsyncClient(timeout=self.timeout, verify=_tls()) as client:
            try:
                if self.flavor == "sglang":
                    r = await client.post(self.base_url + "/v1/chat/completions", json={
                        "model": "default", "max_tokens": 1, "temperature": 0,
                        "messages": [{"role": "user", "content": "Say OK."}]})
                    ok = r.status_code == 200 and bool(r.json().get("choices"))
                elif self.flavor == "vllm":
                    r = await client.get(self.base_url + "/is_sleeping")
                    ok = r.status_code == 200 and r.json().get("is_sleeping") is False
                    if ok:
                        r = await self._vllm_answer(client)
                        ok = r.status_code == 200 and len(r.content) > 44  # more than a WAV header
                else:
                    r = await client.get(self.base_url + "/system_stats")
                    ok = r.status_code == 200 and "devices" in r.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise DriverError(f"{self.name}: known-answer check after wake failed: {exc}") from exc
        if not ok:
            raise DriverError(f"{self.name}: known-answer check after wake failed ({r.status_code}: "
                              f"{r.text[:200]})")

    async def _vllm_answer(self, client: httpx.AsyncClient) -> httpx.Response:
        """vllm-omni speaks a short sentence; a plain vLLM answers one token."""
        models = (await client.get(self.base_url + "/v1/models")).json().get("data") or [{}]
        model = models[0].get("id")
        r = await client.post(self.base_url + "/v1/audio/speech", json={"model": model, "input": "OK."})
        if r.status_code == 404:
            r = await client.post(self.base_url + "/v1/chat/completions", json={
                "model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "Say OK."}]})
        return r

    def _probe_client(self) -> httpx.AsyncClient:
        """One kept-alive client for liveness checks: `is_running` is asked at every lease dispatch,
        and a new client per call costs a TCP connect and a pool's set-up each time."""
        loop = asyncio.get_running_loop()
        if self._probe is None or self._probe[0] is not loop:
            self._probe = (loop, httpx.AsyncClient(timeout=10, verify=_tls()))
        return self._probe[1]

    async def is_running(self) -> bool:
        try:
            r = await self._probe_client().get(
                self.base_url + ("/system_stats" if self.flavor == "comfyui" else "/v1/models"))
        except httpx.HTTPError:
            return False
        return r.status_code < 500

    async def close(self) -> None:
        """Close the liveness client (the server itself is left as it is)."""
        probe, self._probe = self._probe, None
        if probe is not None and probe[0] is asyncio.get_running_loop():
            await probe[1].aclose()

    async def output_since(self, since: float) -> str:
        return "\n".join(m for t, m in self._log if t >= since)

    async def tail(self, lines: int = 30) -> str:
        return "\n".join(m for _, m in self._log[-lines:])
