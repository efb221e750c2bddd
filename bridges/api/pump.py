"""One request's work in its own task, its output read by the HTTP response.

Why a separate task: a request waiting for the GPU must keep talking to its client (SSE comment
lines with the ETA) while the lease is pending, and a client that leaves must take its place in the
queue with it. The work (lease, upstream call) runs in one task from start to end, so the lease is
entered and left in the same task; the response reads what the work emits and, while the work
waits for the GPU, writes a keep-alive comment every `keepalive_s`. When the response stops early
(the client disconnected), `close()` cancels the work: a pending lease leaves the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from bridges.api.wire import comment

log = logging.getLogger(__name__)

END = object()


class _Relay:
    __slots__ = ("done", "source")

    def __init__(self, source: AsyncIterator[bytes], done: asyncio.Event) -> None:
        self.source, self.done = source, done


class Pump:
    def __init__(self, work: Callable[[Pump], Awaitable[Any]], *, waiting_line: Callable[[], str],
                 keepalive_s: float) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.waiting = False  # set by the work while its lease is pending
        self.waiting_line = waiting_line
        self.keepalive_s = keepalive_s
        self.result: Any = None
        self._head: list[Any] = []  # an item taken by `opened()`, given to `stream()` first
        self.committed = False  # the response has taken its status (200): errors go in the stream
        self.task = asyncio.create_task(self._run(work))

    async def _run(self, work) -> None:
        try:
            self.result = await work(self)
        finally:
            self.queue.put_nowait(END)

    def emit(self, data: bytes) -> None:
        self.queue.put_nowait(data)

    async def relay(self, source: AsyncIterator[bytes]) -> None:
        """Hand a byte source to the response, which reads it directly (one hop less per chunk: the
        response's task pulls from upstream), and wait until it is read out or the client left. The
        work keeps what it holds (the lease, the upstream response) until then."""
        done = asyncio.Event()
        self.queue.put_nowait(_Relay(source, done))
        await done.wait()

    async def opened(self, timeout: float) -> BaseException | None:
        """Before a streamed response commits to 200: wait up to `timeout` for the work's first
        output. What the work raised by then (a refusal such as a full GPU queue) is returned, so
        it can still be answered with its own status; after that, errors travel in the stream."""
        try:
            self._head.append(await asyncio.wait_for(self.queue.get(), timeout))
        except TimeoutError:
            pass
        else:
            if self._head[0] is END and self.task.done() and not self.task.cancelled() and self.task.exception():
                return self.task.exception()
        self.committed = True
        return None

    async def stream(self) -> AsyncIterator[bytes]:
        """The bytes the work emits, with keep-alive comments while it waits for the GPU."""
        try:
            first = not self.committed  # after `opened()` timed out, the first comment is due now
            if self.committed and not self._head and self.waiting:
                yield comment(self.waiting_line())
            self.committed = True
            while True:
                if self._head:
                    item = self._head.pop()
                elif self.waiting or first:
                    # the first look is short: a lease that is granted at once never shows a comment
                    timeout = min(0.25, self.keepalive_s) if first else self.keepalive_s
                    first = False
                    try:
                        item = await asyncio.wait_for(self.queue.get(), timeout)
                    except TimeoutError:
                        if self.waiting:
                            yield comment(self.waiting_line())
                        continue
                else:
                    item = await self.queue.get()
                if item is END:
                    break
                if isinstance(item, _Relay):
                    try:
                        async for data in item.source:
                            yield data
                    finally:
                        item.done.set()
                    continue
                yield item
        finally:
            await self.close()

    async def finished(self) -> Any:
        """The work's result (non-streamed requests); raises what the work raised."""
        await asyncio.shield(self.task)
        return self.result

    async def close(self) -> None:
        if not self.task.done():
            self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


async def until_disconnected(receive) -> None:
    """Returns when the client closes the connection (the request body was read already)."""
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            return
