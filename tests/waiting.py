"""`wait_until`: poll a condition instead of sleeping a fixed time and hoping it is long enough."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_until(condition: Callable[[], Any | Awaitable[Any]], *, timeout: float = 10.0,
                     interval: float = 0.02, what: str = "the condition") -> Any:
    """Return the condition's first truthy value (it may be a coroutine function); fail clearly on timeout.

    A loaded machine only makes the wait longer, never the test wrong: the timeout is generous and
    the poll interval short, so a quiet machine pays almost nothing.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)
