"""Open the SQLite file and bring every component's schema forward.

Forward-only, per-component migrations: a DB written by a newer sovhub (a component at a version we
do not know) or a file that is not a sound SQLite DB is refused and never touched.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from hub.errors import StoreError
from hub.store.health import StorageHealth, describe
from hub.store.tx import BUSY_TIMEOUT_MS, Reads, Transaction, Writes
from hub.store.writer import BatchWriter

SQLITE_MAGIC = b"SQLite format 3\x00"
T = TypeVar("T")
PROBE_BYTES = 16384  # a few pages: a write this size fails while the disk is full


def known_migrations() -> dict[str, list[str]]:
    """Each module under hub/store/schema/ is a component with its MIGRATIONS list."""
    import hub.store.schema as schema_pkg

    found: dict[str, list[str]] = {}
    for info in pkgutil.iter_modules(schema_pkg.__path__):
        module = importlib.import_module(f"hub.store.schema.{info.name}")
        found[info.name] = list(getattr(module, "MIGRATIONS", []))
    return found


def _check_file(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb") as fh:
        head = fh.read(16)
    if head != SQLITE_MAGIC:
        raise StoreError(f"{path} is not a SQLite database (corrupted or another file); it was left untouched")


class Store:
    """`db` reads (and single-statement writes); `transaction()` writes several statements as one;
    `writer` queues job bookkeeping behind the caller (write-behind: `flush()` before reading it).
    The rules for choosing are in hub/store/DESIGN.md."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self.db = db
        self.path = path
        self.writes: Writes | None = None
        self.reads: Reads | None = None
        self.writer: BatchWriter | None = None
        self.health = StorageHealth()  # failed writes of every connection, for /status and /metrics

    @classmethod
    async def open(cls, path: str | Path, migrations: dict[str, list[str]] | None = None) -> Store:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the data directory {path.parent}: {exc.strerror or exc}; "
                             "check storage.data_dir") from None
        _check_file(path)
        try:
            db = await aiosqlite.connect(str(path), isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {path}: {exc}") from None
        db.row_factory = aiosqlite.Row
        store = cls(db, path)
        try:
            await store._check_integrity()
            pending = await store._pending(migrations if migrations is not None else known_migrations())
            await store._configure()  # the file is changed only after it passed every check
            store.writes = Writes(path)
            store.reads = Reads(path)
            store.writer = BatchWriter(store.writes, path.name, store.health)
            await store._migrate(pending)
        except BaseException:
            await store._close_connections()
            await db.close()
            raise
        return store

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK when the block raises), see `hub.store.tx`."""
        if self.writes is None:
            raise StoreError("the store is closed")
        async with self.writes.transaction() as tx:
            yield tx

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(sqlite3_connection, *args)` as one transaction in one hop to the write thread
        (`Writes.run`): for writes that need no await between their statements."""
        if self.writes is None:
            raise StoreError("the store is closed")
        return await self.writes.run(fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(sqlite3_connection, *args)` on the store's read thread, from one snapshot of what is
        committed: several reads (a lookup and what it finds) in one hop."""
        if self.reads is None:
            raise StoreError("the store is closed")
        return await self.reads.read(fn, *args)

    async def _check_integrity(self) -> None:
        try:
            rows = await self.db.execute_fetchall("PRAGMA quick_check")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is corrupted ({exc}); it was left untouched") from None
        if rows and rows[0][0] != "ok":
            raise StoreError(f"{self.path} failed its integrity check ({rows[0][0]}); it was left untouched")

    async def _configure(self) -> None:
        # execute_fetchall: each PRAGMA's statement runs to its end (a half-read one keeps a read lock open)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL",  # WAL + NORMAL: consistent after a crash
                       "foreign_keys=ON", f"busy_timeout={BUSY_TIMEOUT_MS}"):
            await self.db.execute_fetchall(f"PRAGMA {pragma}")

    async def _pending(self, migrations: dict[str, list[str]]) -> list[tuple[str, int, str]]:
        """The migration scripts this file still needs, as (component, version, script); refuses a newer file."""
        db = self.db
        exists = await db.execute_fetchall(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_versions'")
        current: dict[str, int] = {}
        if exists:
            current = {r[0]: r[1] for r in await db.execute_fetchall(
                "SELECT component, version FROM schema_versions")}
        newer = [f"{c} v{v} (this sovhub knows v{len(migrations.get(c, []))})"
                 for c, v in current.items() if v > len(migrations.get(c, []))]
        if newer:
            raise StoreError(
                f"{self.path} was written by a newer sovhub: {', '.join(newer)}; refusing to open it "
                "(it was left untouched); upgrade sovhub or point storage.data_dir elsewhere")
        return [(c, v, steps[v - 1]) for c, steps in sorted(migrations.items())
                for v in range(current.get(c, 0) + 1, len(steps) + 1)]

    async def _migrate(self, pending: list[tuple[str, int, str]]) -> None:
        """Every pending script and its version row in one transaction: all of them or none."""
        if not pending:
            return

        def apply(conn: sqlite3.Connection) -> None:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL,"
                " applied_at REAL NOT NULL)")
            for component, version, script in pending:
                for statement in _split(script):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_versions(component, version, applied_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(component) DO UPDATE SET version=excluded.version, applied_at=excluded.applied_at",
                    (component, version, time.time()))

        async with self.transaction() as tx:
            await tx.run(apply)
        # `db` learns the new schema now: a PRAGMA such as wal_checkpoint would meet it stale ("table is locked")
        await self.db.execute_fetchall("SELECT component FROM schema_versions")

    async def versions(self) -> dict[str, int]:
        return {r[0]: r[1] for r in await self.db.execute_fetchall("SELECT component, version FROM schema_versions")}

    async def probe(self) -> None:
        """A real write needing fresh pages, undone in the same transaction: raises a `StoreError`
        ("storage full (...)") while SQLite cannot write, and clears the health check once it can."""

        try:
            async with self.transaction() as tx:
                await tx.execute("INSERT OR REPLACE INTO kv(key, value, updated_at) VALUES ('store.probe', ?, ?)",
                                 (json.dumps("." * PROBE_BYTES), time.time()))
                await tx.execute("DELETE FROM kv WHERE key = 'store.probe'")
        except sqlite3.Error as exc:
            self.health.failed(exc, "storage probe")
            raise StoreError(describe(exc)) from exc
        self.health.ok()

    async def flush(self) -> None:
        """Make the write-behind rows visible to readers of `self.db`."""
        if self.writer is not None:
            await self.writer.flush()

    async def close(self) -> None:
        if self.writer is not None:
            await self.writer.close()
        await self._close_connections()
        await self.db.close()

    async def _close_connections(self) -> None:
        for conn in (self.writes, self.reads):
            if conn is not None:
                await conn.close()
        self.writes = self.reads = None

    # -- key-value state -------------------------------------------------------------------------
    async def kv_get(self, key: str, default: Any = None) -> Any:
        rows = await self.db.execute_fetchall("SELECT value FROM kv WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    async def kv_set(self, key: str, value: Any) -> None:
        await self.db.execute(
            "INSERT INTO kv(key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
            "value=excluded.value, updated_at=excluded.updated_at", (key, json.dumps(value), time.time()))

    # -- idempotency -------------------------------------------------------------------------------
    async def mark_processed(self, source: str, event_id: str, outcome: str = "") -> bool:
        """Record an event as handled; False when it was already recorded (do not handle it again)."""
        cur = await self.db.execute(
            "INSERT OR IGNORE INTO processed_events(source, event_id, at, outcome) VALUES (?, ?, ?, ?)",
            (source, event_id, time.time(), outcome))
        return cur.rowcount == 1

    async def is_processed(self, source: str, event_id: str) -> bool:
        rows = await self.db.execute_fetchall(
            "SELECT 1 FROM processed_events WHERE source = ? AND event_id = ?", (source, event_id))
        return bool(rows)


def _split(script: str) -> list[str]:
    """Split a migration script into statements (no triggers with inner semicolons in our schemas)."""
    return [s.strip() for s in script.split(";") if s.strip()]
