"""A hub that is still starting: the tool list is served at once, tool calls wait for the hub.

A client that spawns `sovhub mcp` gives it a few seconds to answer `initialize` and `tools/list`
(Mistral Vibe: 10 s by default). Both need only the configuration and the skill registry; the
store, the GPU scheduler, chat and schedules start beside them, and the first tool call waits
until they are up. A hub that fails to start makes every call fail with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from fastmcp.server.middleware import Middleware

from hub.config import HubConfig
from hub.errors import HubError
from hub.registry import SkillRegistry

if TYPE_CHECKING:
    from hub.core import Hub

log = logging.getLogger(__name__)


class StartingHub:
    """Stands in for `Hub` while it starts: `config`, `skills` and `extras` now, the rest once started."""

    def __init__(self, config: HubConfig, skills: SkillRegistry) -> None:
        self.config = config
        self.skills = skills
        self.extras: dict[str, Any] = {}
        self._hub: Hub | None = None
        self._task: asyncio.Task | None = None

    def begin(self, **start_kw: Any) -> None:
        """Start the hub in the background (call once the transport serves)."""
        from hub.core import COMPONENTS, Hub, load_component
        from hub.heap import settle_after_startup

        async def start() -> Hub:
            # Import the components in a worker thread: the event loop keeps answering the client.
            for name in start_kw.get("components", COMPONENTS):
                await asyncio.to_thread(load_component, name)
            hub = await Hub.start(self.config, skills=self.skills, **start_kw)
            hub.extras.update(self.extras)
            self._hub = hub
            frozen = settle_after_startup()  # start-up's objects leave the collector's full passes (hub.heap)
            log.debug("start-up done: %d objects frozen out of garbage collection", frozen)
            return hub

        self._task = asyncio.get_running_loop().create_task(start(), name="hub-start")
        self._task.add_done_callback(_log_failure)

    async def started(self) -> Hub:
        if self._hub is not None:
            return self._hub
        if self._task is None:
            raise HubError("the hub was never started")
        try:
            return await asyncio.shield(self._task)
        except HubError as exc:
            raise HubError(f"the hub did not start: {exc}") from None
        except Exception as exc:
            raise HubError(f"the hub did not start: {type(exc).__name__}: {exc}") from None

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes of the real hub (jobs, store, chat, start_skill, status, ...);
        # the `WaitForHub` middleware guarantees a call reaches them only after the start.
        hub = self.__dict__.get("_hub")
        if hub is None:
            raise HubError(f"the hub is still starting (needed: hub.{name})")
        return getattr(hub, name)

    async def stop(self) -> None:
        task = self._task
        if task is None:
            return
        if not task.done():
            task.cancel()
        try:
            hub = await task
        except BaseException:  # cancelled or failed: nothing started that needs stopping
            return
        await hub.stop()


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the hub did not start: %s", task.exception())


class WaitForHub(Middleware):
    """Every tool call (and resource read) waits until the hub behind a `StartingHub` is up."""

    def __init__(self, starting: StartingHub) -> None:
        self.starting = starting

    async def on_call_tool(self, context, call_next):
        await self._ready()
        return await call_next(context)

    async def on_read_resource(self, context, call_next):
        await self._ready()
        return await call_next(context)

    async def _ready(self) -> None:
        from fastmcp.exceptions import ToolError

        try:
            await self.starting.started()
        except HubError as exc:
            raise ToolError(str(exc)) from None
