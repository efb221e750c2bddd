"""A reverse proxy in front of the homeserver that can hold chosen replies: the slow window of a
crash test made as wide as needed.

`hold(match)` arms a hold: the next request that `match(method, path, json_body)` accepts is
forwarded to the homeserver as usual (so the homeserver has it), but its reply waits until the
test calls `release()`. `arrived` is set once the homeserver has answered it — the moment to kill
the client; `response` is the homeserver's answer (e.g. the event id of a send), which the client has
not seen yet. Everything else passes straight through.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp import web

from hub.sim.serve import free_port

Match = Callable[[str, str, Any], bool]
HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


class Hold:
    def __init__(self, match: Match) -> None:
        self.match = match
        self.arrived = asyncio.Event()
        self.released = asyncio.Event()
        self.path: str | None = None
        self.body: Any = None
        self.response: Any = None  # the homeserver's JSON answer, held back from the client

    def release(self) -> None:
        self.released.set()


class DelayProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.holds: list[Hold] = []
        self.log: list[tuple[str, str]] = []  # (method, unquoted path) of every request, in order
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hold(self, match: Match) -> Hold:
        h = Hold(match)
        self.holds.append(h)
        return h

    async def start(self) -> DelayProxy:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def close(self) -> None:
        for h in self.holds:
            h.release()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        data = await request.read()
        path = unquote(request.path)
        self.log.append((request.method, path))
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        hold = next((h for h in self.holds if not h.arrived.is_set() and h.match(request.method, path, parsed)),
                    None)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        assert self._session is not None
        async with self._session.request(request.method, self.upstream + request.rel_url.raw_path_qs,
                                         data=data or None, headers=headers) as up:
            body = await up.read()
            status, ctype = up.status, up.headers.get("Content-Type", "application/json")
        if hold is not None:
            hold.path, hold.body = path, parsed
            try:
                hold.response = json.loads(body) if body else None
            except ValueError:
                hold.response = None
            hold.arrived.set()  # the homeserver has it; the client does not know yet
            await hold.released.wait()
        return web.Response(status=status, body=body, headers={"Content-Type": ctype})
