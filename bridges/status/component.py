"""The status bridge: serves the status page, `/api/status` and `/metrics` on 127.0.0.1.

Loaded by `hub.serve` through the `sovhub.bridges` entry point `status` and started in the order
its declared needs give (hub/component.py). The page and uvicorn are imported by `setup`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from hub.component import GPU, SCHEDULES, STATUS_PAGE
from hub.errors import HubError

if TYPE_CHECKING:
    from hub.config import HubConfig
    from hub.core import Hub

log = logging.getLogger(__name__)
TITLE = "the status page"
PROVIDES = (STATUS_PAGE,)
NEEDS = (GPU, SCHEDULES)  # it shows the scheduler's state and the timetables
REQUIRES = {"uvicorn": "uvicorn", "starlette": "starlette"}
EXTRA_KEY = STATUS_PAGE


def enabled(config: HubConfig) -> bool:
    return config.status.enabled


class _Server:
    """uvicorn inside the hub's event loop; port 0 binds an ephemeral port (tests, the demo)."""

    def __init__(self, app, host: str, port: int) -> None:
        import uvicorn

        from hub.net import QuietServer

        self.host, self.port = host, port
        self.server = QuietServer(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False,
                                                 timeout_graceful_shutdown=2))
        self.task: asyncio.Task | None = None

    async def start(self) -> str:
        from hub.net import bind_tcp

        sock = bind_tcp(self.host, self.port, "the status page")
        host, port = sock.getsockname()[:2]
        self.task = asyncio.create_task(self.server.serve(sockets=[sock]))
        while not self.server.started:
            if self.task.done():
                sock.close()
                raise HubError(f"the status page server on {host}:{port} exited before it started")
            await asyncio.sleep(0.01)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        if self.task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self.task, 5)
        self.task = None


URL_KEY = "status.url"


async def setup(hub: Hub) -> None:
    from bridges.status.app import create_app
    from bridges.status.service import StatusService

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
    try:  # the CLI's `sovhub gpu load|unload|pin` find the running hub's page here
        await hub.store.kv_set(URL_KEY, service.url)
    except Exception as exc:
        log.warning("cannot record the status page URL (%s): %s", URL_KEY, exc)
    log.info("status page on %s (%s)", service.url, "actions with token" if service.token else "read-only")


async def teardown(hub: Hub) -> None:
    service = hub.extras.pop(EXTRA_KEY, None)
    if service is None:
        return
    service.close()
    await service._server.stop()
