"""Run an ASGI stand-in on a real socket, in-process, on an ephemeral port.

Stand-ins are real servers so tests, the demo and the benchmarks all talk the real wire format.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn

from hub.net import QuietServer


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a free TCP port (tests never use documented default ports)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class AppServer:
    """A uvicorn server for one ASGI app, started and stopped from async code."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port or free_port(host)
        self._server: QuietServer | None = None
        self._task: asyncio.Task | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", lifespan="on",
            ws_ping_interval=None, timeout_graceful_shutdown=1,
        )
        self._server = QuietServer(config)  # the host owns signals; stops promptly
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"stand-in on {self.url} exited before it started")
            await asyncio.sleep(0.01)
        return self.url

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self._task, 5)
        self._server = None
        self._task = None


@contextlib.asynccontextmanager
async def serve_app(app, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """`async with serve_app(app) as url:` - the app listens on `url` inside the block."""
    server = AppServer(app, host, port)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()
