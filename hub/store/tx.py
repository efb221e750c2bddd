"""The store's one write API, `store.transaction()` (BEGIN IMMEDIATE ... COMMIT as an async context
manager), and `store.read(fn)`, several reads in one hop.

The store's aiosqlite connection (`store.db`) is shared by every component and runs each statement
on its own (autocommit): a BEGIN ... COMMIT spread over several awaits there would swallow (or roll
back) other coroutines' statements. So transactions run on a second, plain `sqlite3` connection
that only one worker thread touches, and an asyncio lock lets one transaction in at a time: the
statements of a transaction are never mixed with anyone else's, and the write-behind batches
(`writer.py`) queue behind a transaction instead of competing with it for SQLite's lock.

BEGIN IMMEDIATE takes SQLite's write lock with the first statement, so what a transaction reads
and then writes is atomic against every connection and process on the file (another writer waits
up to the busy timeout). SQLite ends a transaction by itself on some errors (a full disk, an I/O
error): a transaction whose statement failed that way refuses to go on or to "commit" the rest.

Reads that need several statements in one hop (a chat turn's history) run as a function on a third
connection, `Reads`: aiosqlite has no public way to run a function on its thread, and the write
thread would put them behind write-behind batches.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hub.errors import StoreError

T = TypeVar("T")
BUSY_TIMEOUT_MS = 5000

ENDED = "SQLite ended this transaction after an error; nothing of it was written"


@dataclass(frozen=True)
class Written:
    """What one statement did: rows changed and the last inserted rowid."""

    rowcount: int
    lastrowid: int | None


class Transaction:
    """The open transaction `store.transaction()` yields; each await is one hop to the write thread.

    Use only this object inside the `async with` block: a write on `store.db` there waits for this
    transaction's lock (up to the busy timeout) while this transaction waits for it.
    """

    def __init__(self, writes: Writes) -> None:
        self._writes = writes
        self._begun = False

    async def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Written:
        cursor = await self.run(lambda conn: conn.execute(sql, params))
        return Written(cursor.rowcount, cursor.lastrowid)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        rows = list(rows)
        return (await self.run(lambda conn: conn.executemany(sql, rows))).rowcount

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(sqlite3_connection, *args)` on the write thread, inside this transaction: many
        statements (or reads) in one hop. `fn` must not COMMIT or ROLLBACK."""
        return await self._writes.call(self._step, fn, *args)

    # -- on the write thread -----------------------------------------------------------------
    def _step(self, fn: Callable[..., T], *args: Any) -> T:
        conn = self._writes.sqlite
        if self._begun and not conn.in_transaction:
            raise sqlite3.OperationalError(ENDED)
        if not self._begun:
            conn.execute("BEGIN IMMEDIATE")
            self._begun = True
        return fn(conn, *args)

    def _commit(self) -> None:
        """COMMIT; on failure roll back without hiding the first error (a failed COMMIT may already
        have ended the transaction, and "no transaction is active" must not replace "disk is full")."""
        conn = self._writes.sqlite
        if not self._begun:
            return
        if not conn.in_transaction:
            raise sqlite3.OperationalError(ENDED)
        try:
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _whole(self, fn: Callable[..., T], *args: Any) -> T:
        """BEGIN IMMEDIATE, `fn`, COMMIT, all on the write thread (`Writes.run`)."""
        try:
            result = self._step(fn, *args)
        except BaseException:
            self._rollback()
            raise
        self._commit()
        return result

    def _rollback(self) -> None:
        conn = self._writes.sqlite
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass


class Connection:
    """One sqlite3 connection that only its one worker thread touches (FIFO: a ROLLBACK queued
    after a cancelled statement runs after it, never beside it).

    A hop is one queue put and one `call_soon_threadsafe` that settles the caller's asyncio future:
    `run_in_executor` chained a concurrent.futures.Future to an asyncio one through locks and
    callbacks, ~2x the CPU of a hop (a chat turn makes three, a fast tool call about two). The thread
    is a daemon: `close()` ends it; at interpreter exit an unclosed store is abandoned as a crash
    would (WAL keeps the file consistent)."""

    def __init__(self, path: Path, name: str) -> None:
        self.sqlite = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.sqlite.row_factory = sqlite3.Row
        self.sqlite.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self.sqlite.execute("PRAGMA synchronous=NORMAL")
        self.sqlite.execute("PRAGMA foreign_keys=ON")
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=_serve, args=(self._jobs,), name=f"sovhub-store-{name}", daemon=True)
        self._thread.start()
        self._closed = False

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue `fn(*args)` for the thread; the future settles on this loop when it has run."""
        future = asyncio.get_running_loop().create_future()
        self._jobs.put((future, fn, args))
        return future

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.submit(fn, *args)

    async def close(self) -> None:
        self._closed = True
        try:
            await self.call(self.sqlite.close)
        finally:
            self._jobs.put(None)


def _serve(jobs: queue.SimpleQueue) -> None:
    """A connection's thread: the queued functions one at a time, in order, each result (or error)
    handed to its future on the caller's event loop."""
    while True:
        job = jobs.get()
        if job is None:
            return
        future, fn, args = job
        try:
            result, error = fn(*args), None
        except BaseException as exc:  # the caller gets it, as from run_in_executor
            result, error = None, exc
        try:
            future.get_loop().call_soon_threadsafe(_settle, future, result, error)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():  # the awaiting task was cancelled meanwhile
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class Reads(Connection):
    """`store.read(fn)`: several reads in one hop, from one snapshot of what is committed."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "read")

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        return await self.call(self._snapshot, fn, *args)

    def _snapshot(self, fn: Callable[..., T], *args: Any) -> T:
        conn = self.sqlite
        conn.execute("BEGIN")  # deferred: a read transaction, so every statement of `fn` sees the same state
        try:
            return fn(conn, *args)
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")


class Writes(Connection):
    """The store's write connection: one transaction at a time."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "write")
        self._lock = asyncio.Lock()

    async def _finish(self, fn: Callable[[], None]) -> None:
        """COMMIT or ROLLBACK runs even when the awaiting task is cancelled meanwhile."""
        await asyncio.shield(self.call(fn))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        if self._closed:
            raise StoreError("the store is closed")
        async with self._lock:
            tx = Transaction(self)
            try:
                yield tx
            except BaseException:
                await self._finish(tx._rollback)
                raise
            await self._finish(tx._commit)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(sqlite3_connection, *args)` as one whole transaction in ONE hop: BEGIN IMMEDIATE, `fn`,
        COMMIT (ROLLBACK when `fn` raises). `transaction()` needs a hop per `tx.run` and one for the
        COMMIT; a write that needs no await in between (a chat turn) saves one. Once queued it runs
        to its end even if the caller is cancelled meanwhile (nothing half-done either way)."""
        if self._closed:
            raise StoreError("the store is closed")
        async with self._lock:
            # shield a future, not a coroutine: no task per write
            return await asyncio.shield(self.submit(Transaction(self)._whole, fn, *args))

    async def close(self) -> None:
        async with self._lock:
            await super().close()
