"""Write-behind for bookkeeping rows (jobs and their events): one `store.transaction()` per batch.

A skill call used to pay a thread hop and a commit per job row and per event; batching them in
one background transaction keeps the one path (`hub.run_skill`) cheap for fast tools. Readers call
`flush()` first, so nothing reads stale rows; a hard kill loses at most the last few milliseconds.

A batch leaves the queue only once its COMMIT succeeded. When the disk is full or the file is
locked too long the rows stay queued, are retried with a backoff, and every `flush()` meanwhile
raises a `StoreError` carrying SQLite's own words ("storage full (database or disk is full)"), so
an id already handed out never silently turns into "no job". A row SQLite refuses for what it says
(a constraint, a bug) cannot block the queue: that batch is written row by row and only the
refused row is dropped, with a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from typing import Any

from hub.errors import StoreError
from hub.store.health import StorageHealth, describe, is_transient
from hub.store.tx import Writes

log = logging.getLogger(__name__)

RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0

Row = tuple[str, tuple[Any, ...]]


class BatchWriter:
    def __init__(self, writes: Writes, name: str, health: StorageHealth | None = None) -> None:
        self.writes = writes
        self.name = name  # the database file's name, for messages
        self.health = health if health is not None else StorageHealth()
        self._pending: list[Row] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closed = False
        self.retry_s = RETRY_FIRST_S

    @property
    def pending(self) -> int:
        """Rows waiting to be written (a failed batch stays here until it is written)."""
        return len(self._pending)

    def add(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")
        self._pending.append((sql, params))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="store-writer")
        self._wake.set()

    async def _loop(self) -> None:
        delay = self.retry_s
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0)  # let the current burst of rows join this batch
            try:
                await self.flush(guarded=False)
                delay = self.retry_s
            except StoreError as exc:
                log.error("%s; %d bookkeeping rows stay queued, retried in %.1f s", exc, len(self._pending), delay)
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)
                self._wake.set()
            except Exception:
                log.exception("writing job bookkeeping to %s failed", self.name)

    async def flush(self, *, guarded: bool = True) -> None:
        """Write every queued row; raises `StoreError` (rows kept) when SQLite cannot take them now.

        A flush whose caller is cancelled (a reader gone) still waits, holding the lock, for the
        batch it handed to the write thread: the queue then says what was written, so the next
        flush neither writes those rows twice nor reads before they are on disk. The writer's own
        task (`guarded=False`) skips that guard's task: it is cancelled only by `close()`, after
        close's own flush has emptied the queue."""
        async with self._lock:
            if not self._pending:
                return
            batch = list(self._pending)
            try:
                dropped = await (self._guarded(batch) if guarded else self._write(batch))
            except sqlite3.Error as exc:
                self.health.failed(exc, "writing job records")
                raise StoreError(f"writing job records to {self.name} failed: {describe(exc)}") from exc
            self._written(batch, dropped)

    async def _guarded(self, batch: list[Row]) -> list[tuple[Row, sqlite3.Error]]:
        """`_write`, and if the caller is cancelled meanwhile, wait for the batch and dequeue it."""
        write = asyncio.ensure_future(self._write(batch))
        try:
            return await asyncio.shield(write)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await write
            if not write.cancelled() and write.exception() is None:
                self._written(batch, write.result())
            raise

    def _written(self, batch: list[Row], dropped: list[tuple[Row, sqlite3.Error]]) -> None:
        del self._pending[:len(batch)]  # rows added meanwhile stay behind, in order
        self.health.ok()
        for (sql, _), exc in dropped:
            self.health.failed(exc, "writing job records")
            log.error("a bookkeeping row was refused by SQLite and dropped (%s): %s", exc, sql.split("(")[0])

    async def _write(self, batch: list[Row]) -> list[tuple[Row, sqlite3.Error]]:
        """One transaction in one hop to the write thread (BEGIN, rows, COMMIT: `Writes.run`); a
        transient failure raises (nothing written), a row SQLite refuses is isolated."""
        try:
            await self.writes.run(_rows, batch, False)
            return []
        except sqlite3.Error as exc:
            if is_transient(exc):
                raise
        return await self.writes.run(_rows, batch, True)

    async def close(self) -> None:
        try:
            await self.flush()
        except StoreError as exc:
            log.error("%s; %d bookkeeping rows are lost at shutdown", exc, len(self._pending))
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass


def _rows(conn: sqlite3.Connection, batch: list[Row], isolate: bool) -> list[tuple[Row, sqlite3.Error]]:
    """On the write thread, inside the transaction: every row, or (isolate) each row in its own
    savepoint so that a row SQLite refuses for what it says is dropped alone."""
    dropped: list[tuple[Row, sqlite3.Error]] = []
    for row in batch:
        if not isolate:
            conn.execute(*row)
            continue
        conn.execute("SAVEPOINT row")
        try:
            conn.execute(*row)
        except sqlite3.Error as exc:
            if is_transient(exc):
                raise
            conn.execute("ROLLBACK TO row")
            dropped.append((row, exc))
        conn.execute("RELEASE row")
    return dropped
