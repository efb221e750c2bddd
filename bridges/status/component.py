"""The status bridge: serves the status page, `/api/status` and `/metrics` on 127.0.0.1.

Loaded by `hub.runtime` through the `sovhub.bridges` entry point `status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import uvicorn

from bridges.status.app import create_app
from bridges.status.service import StatusService

if TYPE_CHECKING:
    from hub.config import HubConfig
    from hub.core import Hub

log = logging.getLogger(__name__)
EXTRA_KEY = "status_page"


def enabled(config: HubConfig) -> bool:
    return config.status.enabled


class _Server:
    """uvicorn inside the hub's event loop; port 0 binds an ephemeral port (tests, the demo)."""

    def __init__(self, app, host: str, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                    lifespan="off", access_log=False,
                                                    timeout_graceful_shutdown=2))
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.task: asyncio.Task | None = None

    async def start(self) -> str:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()
                raise RuntimeError("the status page server exited before it started")
            await asyncio.sleep(0.01)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        if self.task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self.task, 5)
        self.task = None


async def setup(hub: Hub) -> None:
    service = StatusService(hub)
    cfg = hub.config.status
    server = _Server(create_app(service), cfg.host, cfg.port)
    try:
        service.url = await server.start()
    except BaseException:
        service.close()
        raise
    service._server = server  # type: ignore[attr-defined]
    hub.extras[EXTRA_KEY] = service
    log.info("status page on %s (%s)", service.url, "actions with token" if service.token else "read-only")


async def teardown(hub: Hub) -> None:
    service = hub.extras.pop(EXTRA_KEY, None)
    if service is None:
        return
    service.close()
    await service._server.stop()
