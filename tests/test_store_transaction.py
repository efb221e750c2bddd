"""`store.transaction()`: all or nothing, never mixed with another writer, durable once the block ends."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.store import Store
from tests.storage_helpers import disk_full

REPO = Path(__file__).resolve().parents[1]


async def _kv(store: Store, key: str):
    return await store.kv_get(key)


async def _add(store: Store, key: str, amount: int) -> None:
    """Read, then write what was read plus `amount`: loses updates unless the read is under the write lock."""
    async with store.transaction() as tx:
        rows = await tx.run(lambda conn: conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchall())
        await asyncio.sleep(0)  # every other writer gets its chance to interleave here
        value = int(rows[0][0]) + amount if rows else amount
        await tx.execute("INSERT INTO kv(key, value, updated_at) VALUES (?, ?, 0) ON CONFLICT(key) DO UPDATE "
                         "SET value = excluded.value", (key, str(value)))


@settings(max_examples=15, deadline=None)
@given(amounts=st.lists(st.tuples(st.integers(1, 9), st.booleans()), min_size=1, max_size=16))
def test_read_then_write_transactions_on_two_connections_never_lose_an_update(tmp_path_factory, amounts):
    """Two stores on one file (the hub and `sovhub mcp`, say): BEGIN IMMEDIATE makes each
    read-modify-write one step for both, so the total is the sum of every addition."""

    async def scenario() -> None:
        path = tmp_path_factory.mktemp("tx") / "hub.db"
        stores = [await Store.open(path), await Store.open(path)]
        try:
            await asyncio.gather(*(_add(stores[int(other)], "n", amount) for amount, other in amounts))
            assert await _kv(stores[0], "n") == sum(a for a, _ in amounts)
        finally:
            for store in stores:
                await store.close()

    asyncio.run(scenario())


def _add_whole(conn: sqlite3.Connection, key: str, amount: int) -> None:
    rows = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchall()
    value = int(rows[0][0]) + amount if rows else amount
    conn.execute("INSERT INTO kv(key, value, updated_at) VALUES (?, ?, 0) ON CONFLICT(key) DO UPDATE "
                 "SET value = excluded.value", (key, str(value)))


@settings(max_examples=10, deadline=None)
@given(amounts=st.lists(st.tuples(st.integers(1, 9), st.integers(0, 3)), min_size=1, max_size=16))
def test_one_hop_writes_and_block_transactions_on_two_connections_never_lose_an_update(tmp_path_factory, amounts):
    """`store.write(fn)` (BEGIN IMMEDIATE, fn, COMMIT in one hop) mixed with `store.transaction()`
    blocks, on two stores of one file: every read-modify-write counts."""

    async def scenario() -> None:
        path = tmp_path_factory.mktemp("tx") / "hub.db"
        stores = [await Store.open(path), await Store.open(path)]
        try:
            await asyncio.gather(*(stores[how % 2].write(_add_whole, "n", amount) if how < 2
                                   else _add(stores[how % 2], "n", amount) for amount, how in amounts))
            assert await _kv(stores[0], "n") == sum(a for a, _ in amounts)
        finally:
            for store in stores:
                await store.close()

    asyncio.run(scenario())


async def test_a_one_hop_write_that_raises_writes_nothing_and_one_that_returns_writes_all(tmp_path):
    store = await Store.open(tmp_path / "hub.db")

    def two_then_fail(conn: sqlite3.Connection, fail: bool) -> int:
        conn.execute("INSERT INTO kv(key, value, updated_at) VALUES ('a', '1', 0)")
        conn.execute("INSERT INTO kv(key, value, updated_at) VALUES ('b', '2', 0)")
        if fail:
            raise RuntimeError("changed my mind")
        return 2

    try:
        with pytest.raises(RuntimeError, match="changed my mind"):
            await store.write(two_then_fail, True)
        assert await store.kv_get("a") is None and await store.kv_get("b") is None
        assert await store.write(two_then_fail, False) == 2
        assert (await store.kv_get("a"), await store.kv_get("b")) == (1, 2)
    finally:
        await store.close()


async def test_a_block_that_raises_writes_nothing_and_the_next_transaction_runs(tmp_path):
    store = await Store.open(tmp_path / "hub.db")
    try:
        with pytest.raises(RuntimeError, match="changed my mind"):
            async with store.transaction() as tx:
                await tx.execute("INSERT INTO kv(key, value, updated_at) VALUES ('a', '1', 0)")
                raise RuntimeError("changed my mind")
        assert await _kv(store, "a") is None
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO kv(key, value, updated_at) VALUES ('b', '2', 0)")
        assert await _kv(store, "b") == 2
    finally:
        await store.close()


async def test_a_cancelled_transaction_is_rolled_back_and_frees_the_store(tmp_path):
    store = await Store.open(tmp_path / "hub.db")
    inside = asyncio.Event()

    async def slow() -> None:
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO kv(key, value, updated_at) VALUES ('a', '1', 0)")
            inside.set()
            await asyncio.Event().wait()  # cancelled here, mid-transaction

    try:
        task = asyncio.create_task(slow())
        await inside.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await _kv(store, "a") is None
        await store.kv_set("b", 2)  # store.db can write: the write lock was released
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO kv(key, value, updated_at) VALUES ('c', '3', 0)")
        assert (await _kv(store, "b"), await _kv(store, "c")) == (2, 3)
    finally:
        await store.close()


async def test_a_full_disk_error_caught_inside_the_block_never_commits_a_transaction_with_a_hole(tmp_path):
    """SQLite may end the whole transaction on SQLITE_FULL; a caller that catches the error and goes
    on must not get the rest committed without the first part."""
    store = await Store.open(tmp_path / "hub.db")
    try:
        async with disk_full(store):
            try:
                async with store.transaction() as tx:
                    await tx.execute("INSERT INTO kv(key, value, updated_at) VALUES ('first', '1', 0)")
                    with pytest.raises(sqlite3.OperationalError, match="full"):
                        await tx.execute("INSERT INTO kv(key, value, updated_at) VALUES ('big', ?, 0)",
                                         ("\"" + "x" * 200_000 + "\"",))
                    await tx.execute("INSERT INTO kv(key, value, updated_at) VALUES ('last', '3', 0)")
            except sqlite3.OperationalError as exc:
                assert "full" in str(exc) or "ended this transaction" in str(exc)
        first, last = await _kv(store, "first"), await _kv(store, "last")
        assert (first, last) in ((None, None), (1, 3)), (first, last)
        assert await _kv(store, "big") is None
    finally:
        await store.close()


CHILD = """
import asyncio, os, signal, sys
from hub.store import Store

async def main(path, where):
    store = await Store.open(path)
    async with store.transaction() as tx:
        for i in range(50):
            await tx.execute("INSERT INTO kv(key, value, updated_at) VALUES (?, ?, 0)", (f"k{i}", str(i)))
        if where == "inside":
            os.kill(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)  # right after the block: no close, no checkpoint

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.parametrize("where, expected", [("inside", 0), ("after", 50)])
async def test_a_process_killed_inside_a_transaction_leaves_nothing_and_after_it_leaves_everything(
        tmp_path, where, expected):
    path = tmp_path / "hub.db"
    child = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", CHILD, str(path), where],
                                    cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                                    capture_output=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    store = await Store.open(path)
    try:
        rows = await store.db.execute_fetchall("SELECT COUNT(*) FROM kv WHERE key LIKE 'k%'")
        assert rows[0][0] == expected
    finally:
        await store.close()
