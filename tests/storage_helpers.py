"""A full disk for one hub, the SQLite way: `max_page_count` capped at the file's current size.

SQLite then answers every write that needs a new page with SQLITE_FULL, "database or disk is full",
exactly as on a full file system; lifting the cap is the disk getting room again. The cap is per
connection, so it is set on every connection of the store.
"""

from __future__ import annotations

import sqlite3
from contextlib import asynccontextmanager

from hub.store import Store

UNCAPPED = 1073741823  # SQLite's default max_page_count
FILLER = "filler-"


async def _cap(store: Store, pages: int) -> None:
    """The cap on both of the store's connections: `store.db` and the write connection."""
    await store.db.execute_fetchall(f"PRAGMA max_page_count = {pages}")
    async with store.transaction() as tx:
        await tx.execute(f"PRAGMA max_page_count = {pages}")


def _other_connection(store: Store) -> sqlite3.Connection:
    """Another writer on the same file (as another process would be), capped like the store."""
    conn = sqlite3.connect(store.path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def _pack_job_tables(store: Store) -> None:
    """Use up the free pages and the room left in the job tables' pages, so even a small job row fails."""
    conn = _other_connection(store)
    conn.execute("PRAGMA max_page_count = 1")  # SQLite keeps it at least the current size
    n = 0
    try:
        for size in (3000, 700, 150, 40, 8):
            while True:
                try:
                    conn.execute("INSERT INTO jobs(id, skill, params, status, context, origin, created_at) "
                                 "VALUES (?, 'filler', ?, 'filler', '{}', 'cli', 0)", (f"{FILLER}{n}", "x" * size))
                    conn.execute("INSERT INTO job_events(job_id, at, type, data) VALUES (?, 0, 'filler', ?)",
                                 (f"{FILLER}{n}", "x" * size))
                    n += 1
                except sqlite3.OperationalError as exc:
                    if "full" not in str(exc):
                        raise
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    break
    finally:
        conn.close()


async def fill_disk(store: Store) -> None:
    """From now on every write needing a new page fails with SQLITE_FULL (job rows of any size too)."""
    await store.flush()
    await store.db.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
    await _cap(store, 1)  # SQLite keeps it at least the current size
    _pack_job_tables(store)


async def free_disk(store: Store) -> None:
    await _cap(store, UNCAPPED)
    conn = _other_connection(store)
    try:
        conn.execute("DELETE FROM job_events WHERE job_id LIKE ?", (FILLER + "%",))
        conn.execute("DELETE FROM jobs WHERE id LIKE ?", (FILLER + "%",))
    finally:
        conn.close()


@asynccontextmanager
async def disk_full(store: Store):
    await fill_disk(store)
    try:
        yield
    finally:
        await free_disk(store)


def is_sqlite_full(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "full" in str(exc)
