"""The event bus: typed events, each with a Context; listeners never break the firer."""

from __future__ import annotations

import inspect
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from hub.context import Context

log = logging.getLogger(__name__)

Listener = Callable[["Event"], Awaitable[None] | None]


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any]
    context: Context
    time: float = field(default_factory=time.time)


class EventBus:
    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = defaultdict(list)

    def listen(self, event_type: str, callback: Listener) -> Callable[[], None]:
        """Subscribe to one event type ("*" for all); returns the unsubscribe function."""
        self._listeners[event_type].append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners[event_type]:
                self._listeners[event_type].remove(callback)

        return unsubscribe

    async def fire(self, event_type: str, data: dict[str, Any], context: Context) -> Event:
        event = Event(event_type, data, context)
        for callback in [*self._listeners.get(event_type, ()), *self._listeners.get("*", ())]:
            try:
                result = callback(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("listener for %s failed", event_type)
        return event
