"""`sovhub run` component for the gateway: serve `/v1` on `api.host:api.port` while the hub runs.

Started after the chat component (it reuses `hub.chat`'s providers, privacy gate and spend ledger);
binds through `hub.net` like the other HTTP bridges. This module is the manifest: the gateway and
uvicorn are imported by `setup`, so a hub without the gateway does not load them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from hub.component import API, CHAT

if TYPE_CHECKING:
    from hub.config import HubConfig
    from hub.core import Hub

log = logging.getLogger(__name__)
TITLE = "the API gateway"
PROVIDES = (API,)
NEEDS = (CHAT,)
REQUIRES = {"uvicorn": "uvicorn", "starlette": "starlette"}
EXTRA_KEY = API


def enabled(config: HubConfig) -> bool:
    return config.api.enabled


async def setup(hub: Hub) -> None:
    import uvicorn

    from bridges.api.app import create_app
    from bridges.api.gateway import Gateway
    from hub.errors import HubError
    from hub.net import QuietServer, bind_tcp, url_of

    gateway = Gateway(hub)
    cfg = hub.config.api
    server = QuietServer(uvicorn.Config(create_app(gateway), log_level="warning", lifespan="off", access_log=False,
                                        timeout_graceful_shutdown=2))
    sock = bind_tcp(cfg.host, cfg.port, "the API gateway")
    gateway.url = url_of(sock)  # type: ignore[attr-defined]
    task = asyncio.create_task(server.serve(sockets=[sock]), name="api-http")
    while not server.started:
        if task.done():
            sock.close()
            await gateway.close()
            raise HubError(f"the API gateway on {gateway.url} exited before it started")  # type: ignore[attr-defined]
        await asyncio.sleep(0.01)
    gateway._serving = (server, task)  # type: ignore[attr-defined]
    hub.extras[EXTRA_KEY] = gateway
    log.info("API gateway on %s/v1 (%s)", gateway.url,  # type: ignore[attr-defined]
             f"{len(cfg.tokens)} tokens" if cfg.tokens else "no tokens: loopback only")


async def teardown(hub: Hub) -> None:
    gateway = hub.extras.pop(EXTRA_KEY, None)
    if gateway is None:
        return
    server, task = gateway._serving
    server.should_exit = True
    with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    await gateway.close()
