"""Run a hub with its bridges until stopped: the imperative shell of `sovhub run` and `sovhub demo`.

Bridges (Matrix, MCP, status page, API gateway) are found through the `sovhub.bridges` entry
points, so the hub never imports a bridge by name. Each entry point names a light component module
(hub/component.py: `enabled`, `PROVIDES`, `NEEDS`, `REQUIRES`, `setup`, `teardown`); the enabled
ones join the hub's own components in one list that `Hub.start` orders by their declared needs.
A disabled bridge costs nothing: its implementation (nio, fastmcp, uvicorn) is never imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from importlib.metadata import entry_points
from typing import Any, NoReturn

from hub.config import HubConfig
from hub.core import COMPONENTS, Hub, enabled_components
from hub.heap import settle_after_startup

log = logging.getLogger(__name__)


def bridge_modules(config: HubConfig, only: set[str] | None = None) -> list[tuple[str, Any]]:
    """(name, component) of each bridge the config enables, in start order (their declared needs)."""
    found = [(ep.name, ep.load()) for ep in sorted(entry_points(group="sovhub.bridges"), key=lambda e: e.name)
             if only is None or ep.name in only]
    names = {id(module): name for name, module in found}
    return [(names[id(module)], module) for module in enabled_components(config, tuple(m for _, m in found))]


async def start_bridges(hub: Hub, only: set[str] | None = None) -> list[tuple[str, Any]]:
    """Bridges on a hub that is already running (tests, benchmarks): started in their declared order."""
    started = []
    for name, module in bridge_modules(hub.config, only):
        await module.setup(hub)
        started.append((name, module))
        log.info("bridge %s started", name)
    return started


async def stop_bridges(hub: Hub, started: list[tuple[str, Any]], timeout: float = 10.0) -> None:
    for name, module in reversed(started):
        try:
            await asyncio.wait_for(module.teardown(hub), timeout)
        except Exception:
            log.exception("bridge %s did not stop cleanly", name)


async def run_forever(config: HubConfig, stop: asyncio.Event | None = None) -> None:
    """Start the hub and every enabled bridge; stop cleanly on SIGINT/SIGTERM."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    bridges = bridge_modules(config)
    hub = await Hub.start(config, components=(*COMPONENTS, *(module for _, module in bridges)))
    try:
        frozen = settle_after_startup()  # start-up's objects leave the collector's full passes
        log.debug("start-up done: %d objects frozen out of garbage collection", frozen)
        log.info("sovhub is running (%d skills, bridges: %s)", len(hub.skills),
                 ", ".join(n for n, _ in bridges) or "none")
        await stop.wait()
    finally:
        await hub.stop()  # bridges first (reverse start order), after the last jobs' announcements


def exit_process(code: int = 0) -> NoReturn:
    """End the process at once, after a clean shutdown (bridges stopped, jobs settled, store closed).

    What is left at that point is the interpreter tearing down every module and running the
    finalizers of the SDKs' objects: 1-2 s on a busy 2-core box, measured, for nothing durable
    (the SQLite store is closed, nio commits its E2EE store as it goes). Skipping it is the
    difference between a SIGTERM that stops the bot in under 0.1 s and one that takes 2 s.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
