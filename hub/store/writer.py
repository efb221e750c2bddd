"""Write-behind for bookkeeping rows (jobs and their events): one transaction per batch.

A skill call used to pay a thread hop and a commit per job row and per event; batching them in
one background transaction keeps the one path (`hub.run_skill`) cheap for fast tools. Readers call
`flush()` first, so nothing reads stale rows; a hard kill loses at most the last few milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class BatchWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closed = False

    def add(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")
        self._pending.append((sql, params))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="store-writer")
        self._wake.set()

    async def _loop(self) -> None:
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0)  # let the current burst of rows join this batch
            try:
                await self.flush()
            except Exception:
                log.exception("writing job bookkeeping to %s failed", self.path)

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, []
            await asyncio.to_thread(self._write, batch)

    def _write(self, batch: list[tuple[str, tuple[Any, ...]]]) -> None:
        conn = self._conn
        conn.execute("BEGIN")
        try:
            for sql, params in batch:
                conn.execute(sql, params)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        await self.flush()
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        self._conn.close()
