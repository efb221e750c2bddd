"""One transaction in one hop to the shared connection's thread.

The store's aiosqlite connection is shared by every component: a BEGIN ... COMMIT spread over
several awaits would swallow (or roll back) other coroutines' statements. aiosqlite runs queued
functions one at a time on its thread, so `atomically` is atomic for everyone on that connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def run_in_transaction(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    """BEGIN IMMEDIATE, `fn(conn, *args)`, COMMIT; on failure roll back without hiding the first error.

    SQLite ends the transaction by itself on some errors (a full disk, an I/O error, a failed
    COMMIT); a ROLLBACK then fails with "no transaction is active", which must not replace
    "database or disk is full".
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        raise
    return result


async def atomically(db: Any, fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(sqlite3_connection, *args)` as ONE transaction on the aiosqlite connection `db`."""
    return await db._execute(run_in_transaction, db._conn, fn, *args)
