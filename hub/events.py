"""The event bus: typed events, each with a Context; listeners never break, nor hold up, the firer.

`fire` runs plain-function listeners inline (they must not do I/O) and schedules each coroutine
listener as its own tracked task, as Home Assistant's `async_fire` does: a job's completion never
waits on a Matrix send. `fire_and_wait` awaits every listener in order, for the rare case where the
firer needs the listeners done (hub start-up and shut-down). `settle` waits for the scheduled
listeners, which `Hub.stop` does before the bridges go, so no announcement is lost on shutdown.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypedDict, TypeVar

from hub.context import Context

log = logging.getLogger(__name__)

Listener = Callable[["Event"], Awaitable[None] | None]

D = TypeVar("D")


class EventType(str, Generic[D]):
    """An event name that carries its payload type (in the spirit of Home Assistant's `EventType`)."""

    __slots__ = ()


class JobQueuedData(TypedDict, total=False):
    job_id: str
    skill: str


class JobStartedData(TypedDict):
    job_id: str
    skill: str


class JobProgressData(TypedDict, total=False):
    job_id: str
    skill: str
    message: str


class JobFinishedData(TypedDict, total=False):
    job_id: str
    skill: str
    status: str
    error: str | None


class AnnouncementData(TypedDict, total=False):
    room: str | None
    text: str
    schedule: str
    files: list[str]


class NoData(TypedDict):
    pass


HUB_STARTED: EventType[NoData] = EventType("hub_started")
HUB_STOPPING: EventType[NoData] = EventType("hub_stopping")
JOB_QUEUED: EventType[JobQueuedData] = EventType("job_queued")
JOB_STARTED: EventType[JobStartedData] = EventType("job_started")
JOB_PROGRESS: EventType[JobProgressData] = EventType("job_progress")
JOB_FINISHED: EventType[JobFinishedData] = EventType("job_finished")
ANNOUNCEMENT: EventType[AnnouncementData] = EventType("announcement")


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any]
    context: Context
    time: float = field(default_factory=time.time)


class EventBus:
    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = defaultdict(list)
        self._pending: set[asyncio.Task[None]] = set()

    def listen(self, event_type: str, callback: Listener) -> Callable[[], None]:
        """Subscribe to one event type ("*" for all); returns the unsubscribe function."""
        self._listeners[event_type].append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners[event_type]:
                self._listeners[event_type].remove(callback)

        return unsubscribe

    def _targets(self, event_type: str) -> list[Listener]:
        return [*self._listeners.get(event_type, ()), *self._listeners.get("*", ())]

    async def fire(self, event_type: str, data: dict[str, Any], context: Context) -> Event:
        """Deliver without waiting: coroutine listeners become tracked tasks (awaitable for callers'
        convenience; returns as soon as the plain listeners have run)."""
        event = Event(event_type, data, context)
        for callback in self._targets(event_type):
            try:
                result = callback(event)
            except Exception:
                log.exception("listener for %s failed", event_type)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(self._guarded(event_type, result))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
        return event

    async def fire_and_wait(self, event_type: str, data: dict[str, Any], context: Context) -> Event:
        """Deliver in order and wait for every listener: only where the firer needs them done."""
        event = Event(event_type, data, context)
        for callback in self._targets(event_type):
            try:
                result = callback(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("listener for %s failed", event_type)
        return event

    async def settle(self, timeout: float | None = None) -> None:
        """Wait (bounded) for the listener tasks scheduled so far, and those they schedule."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._pending:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                log.warning("%d event listener(s) still running at shutdown", len(self._pending))
                return
            await asyncio.wait(set(self._pending), timeout=left)

    @staticmethod
    async def _guarded(event_type: str, result: Awaitable[None]) -> None:
        try:
            await result
        except Exception:
            log.exception("listener for %s failed", event_type)
