"""The hub's MCP server over streamable HTTP: an in-process uvicorn that can be restarted.

Registered as `hub.extras["mcp"]` so `sovhub status` shows it and the `restart_mcp` skill can
restart it without restarting the hub.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import TYPE_CHECKING, Any

import uvicorn

from bridges.mcp.access import Caller, check_bind
from bridges.mcp.hub_tools import HUB_TOOL_NAMES
from bridges.mcp.server import build_server
from bridges.mcp.skill_tools import CallStats
from hub.errors import HubError
from hub.net import QuietServer, bind_tcp

if TYPE_CHECKING:
    from hub.core import Hub

log = logging.getLogger(__name__)


class MCPBridge:
    """Streamable HTTP at `url`, bearer tokens -> roles, Host/Origin checked (a foreign Host gets 421)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.config = hub.config.mcp
        self.stats = CallStats()
        self.port = self.config.port
        self.restarts = 0
        self.started_at: float | None = None
        self._server: QuietServer | None = None
        self._task: asyncio.Task | None = None

    @property
    def url(self) -> str:
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}{self.config.path}"

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def app(self):
        default = None if self.config.tokens else Caller("anonymous", self.config.anonymous_role, via="anonymous")
        mcp = build_server(self.hub, default_caller=default, with_auth=True, stats=self.stats)
        allowed_hosts = [*self.config.allowed_hosts, self.config.host]
        return mcp.http_app(path=self.config.path, transport="http", host_origin_protection=True,
                            allowed_hosts=allowed_hosts, allowed_origins=self.config.allowed_origins or None)

    async def start(self) -> None:
        check_bind(self.config)
        sock = bind_tcp(self.config.host, self.port, "the MCP server")
        self.port = sock.getsockname()[1]  # port 0 -> the one the kernel chose; restarts keep it
        config = uvicorn.Config(self.app(), log_config=None, access_log=False, lifespan="on",
                                timeout_graceful_shutdown=2, ws="none")
        server = QuietServer(config)
        task = asyncio.create_task(self._serve(server, sock), name="mcp-http")
        while not server.started:
            if task.done():
                sock.close()
                exc = task.exception()
                raise HubError(f"the MCP server did not start: {exc}") from exc
            await asyncio.sleep(0.01)
        self._server, self._task, self.started_at = server, task, time.time()
        self.stats.stopping = False
        log.info("MCP server on %s (%s)", self.url,
                 f"{len(self.config.tokens)} token(s)" if self.config.tokens else "no tokens, loopback only")

    @staticmethod
    async def _serve(server: QuietServer, sock: socket.socket) -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit as exc:  # uvicorn exits on a failed lifespan start-up
            raise HubError(f"uvicorn stopped (exit {exc.code})") from None
        finally:
            sock.close()

    async def stop(self) -> None:
        server, task = self._server, self._task
        self._server, self._task = None, None
        if server is None or task is None:
            return
        # Calls cut off by our own shutdown must not cancel their jobs (a `restart_mcp` call would
        # otherwise cancel itself half-way); only a client that gives up cancels its job.
        self.stats.stopping = True
        server.should_exit = True
        done, _ = await asyncio.wait({task}, timeout=5)
        if not done:
            server.force_exit = True
            task.cancel()
            await asyncio.wait({task}, timeout=2)
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.warning("the MCP server stopped with an error: %s", task.exception())

    async def restart(self) -> None:
        """Stop and start again on the same address (in-flight calls end; their jobs go on)."""
        await self.stop()
        await self.start()
        self.restarts += 1

    def status(self) -> dict[str, Any]:
        return {
            "url": self.url, "running": self.running,
            "auth": f"{len(self.config.tokens)} token(s)" if self.config.tokens else "none (loopback)",
            "tools": len(self.hub.skills) + len(HUB_TOOL_NAMES), "calls": self.stats.calls, "errors": self.stats.errors,
            "deferred": self.stats.deferred, "restarts": self.restarts,
            "uptime_s": round(time.time() - self.started_at, 1) if self.started_at and self.running else None,
        }
