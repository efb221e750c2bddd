"""Serving HTTP inside the hub's own event loop: binding, and uvicorn without its signal handlers.

The MCP bridge and the status page both bind here rather than in uvicorn, because uvicorn answers a
bind failure with sys.exit inside the hub's loop; binding first turns it into a clear HubError.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn

from hub.errors import HubError

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def host_name(host_header: str) -> str:
    """The host part of an HTTP Host header ("[::1]:8003" -> "::1"), lower-cased, for DNS-rebinding checks."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def bind_tcp(host: str, port: int, purpose: str) -> socket.socket:
    """A listening, non-blocking TCP socket; port 0 lets the kernel choose (tests, the demo)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say so, and without it
    # every small response waits out a delayed ACK (about 40 ms instead of 2).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise HubError(f"{purpose} cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


class QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers (the hub owns SIGINT/SIGTERM), and with a prompt stop.

    uvicorn notices `should_exit` at a 0.1 s tick, then sleeps a fixed 0.1 s and polls in 0.1 s steps
    while connections close: ~0.2 s per stop, paid by every restart of the MCP bridge and by each of
    the hundreds of servers a test run starts. Here setting `should_exit` wakes the main loop at once,
    and shutdown polls every few milliseconds, keeping uvicorn's order and its graceful bound: stop
    listening, close idle connections (busy ones end after their response), wait for the connections
    and the app's tasks up to `timeout_graceful_shutdown`, cancel what is left, then the lifespan shutdown.
    """

    @property
    def should_exit(self) -> bool:
        return self._exit_now.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if not hasattr(self, "_exit_now"):
            self._exit_now = asyncio.Event()
        if value:
            self._exit_now.set()
        else:
            self._exit_now.clear()

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._exit_now.wait(), 0.1)  # on_tick refreshes the Date header

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        state, loop = self.server_state, asyncio.get_running_loop()
        deadline = loop.time() + (self.config.timeout_graceful_shutdown or 0)
        # uvicorn has no event for "the last connection closed": poll, briefly
        while (state.connections or state.tasks) and not self.force_exit and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        for task in state.tasks:
            task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not state.connections:
            for server in self.servers:
                await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()
