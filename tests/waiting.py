"""`wait_until`: poll a condition instead of sleeping a fixed time and hoping it is long enough.

A fixed sleep is either too short on a loaded machine (a flaky test) or too long on a quiet one (a slow
test). Polling a condition with a generous timeout is neither. The only sleeps left in the tests are the
behaviour under test (a stand-in's simulated work, a skill that must still be running) or the observation
window of a negative claim ("no second run starts"), each with a comment saying so.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_until(condition: Callable[[], Any | Awaitable[Any]], *, timeout: float = 10.0,
                     interval: float = 0.02, what: str = "the condition",
                     ignoring: tuple[type[BaseException], ...] = ()) -> Any:
    """Return the condition's first truthy value (it may be a coroutine function); fail clearly on timeout.

    A loaded machine only makes the wait longer, never the test wrong: the timeout is generous and
    the poll interval short, so a quiet machine pays almost nothing. Exceptions of the `ignoring` types
    count as "not yet" (a server that still refuses connections while it starts); the last one is
    chained to the timeout's error.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = condition()
            if inspect.isawaitable(value):
                value = await value
        except ignoring as exc:
            value, last = None, exc
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}") from last
        await asyncio.sleep(interval)


def wait_until_sync(condition: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.05,
                    what: str = "the condition", ignoring: tuple[type[BaseException], ...] = ()) -> Any:
    """`wait_until` for synchronous code (the test bed's start-up, blocking HTTP checks)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = condition()
        except ignoring as exc:
            value, last = None, exc
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}") from last
        time.sleep(interval)
