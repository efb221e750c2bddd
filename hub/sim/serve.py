"""Run an ASGI stand-in on a real socket, in-process, on an ephemeral port.

Stand-ins are real servers so tests, the demo and the benchmarks all talk the real wire format.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a free TCP port (tests never use documented default ports)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class _PromptServer(uvicorn.Server):
    """uvicorn's server with a prompt stop. uvicorn notices its exit flag at a 0.1 s tick and then
    sleeps a fixed 0.1 s (and polls in 0.1 s steps) while connections close; a test suite that starts
    and stops two hundred stand-ins paid ~0.2 s for each. Here the main loop wakes when told to exit
    and shutdown polls every few milliseconds, with uvicorn's graceful-shutdown bound and order kept:
    stop listening, close idle connections (busy ones end after their response), wait for them and the
    app's tasks, cancel what is left at the bound, then the lifespan shutdown."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.exit_now = asyncio.Event()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.exit_now.wait(), 0.1)

    async def shutdown(self, sockets=None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.config.timeout_graceful_shutdown or 0)
        while (self.server_state.connections or self.server_state.tasks) and loop.time() < deadline:  # noqa: ASYNC110 - uvicorn gives no event to wait on
            await asyncio.sleep(0.005)
        for task in self.server_state.tasks:
            task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.server_state.connections:
            for server in self.servers:
                await server.wait_closed()
        await self.lifespan.shutdown()


class AppServer:
    """A uvicorn server for one ASGI app, started and stopped from async code."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port or free_port(host)
        self._server: _PromptServer | None = None
        self._task: asyncio.Task | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", lifespan="on",
            ws_ping_interval=None, timeout_graceful_shutdown=1,
        )
        self._server = _PromptServer(config)
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]  # the host owns signals
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
        self._server.exit_now.set()
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
