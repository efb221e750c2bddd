"""Store: forward-only migrations per component; newer or corrupt files are refused untouched."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from hub.errors import StoreError
from hub.store import Store
from hub.store.db import known_migrations

OLD = {"core": ["CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"]}
NEW = {"core": [*OLD["core"], "ALTER TABLE notes ADD COLUMN tag TEXT NOT NULL DEFAULT 'none'"]}


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_old_version_db_migrates_with_its_data_intact(tmp_path):
    path = tmp_path / "hub.db"
    store = await Store.open(path, OLD)
    await store.db.execute("INSERT INTO notes(body) VALUES ('kept')")
    await store.close()

    store = await Store.open(path, NEW)
    rows = await store.db.execute_fetchall("SELECT body, tag FROM notes")
    assert [tuple(r) for r in rows] == [("kept", "none")]
    assert await store.versions() == {"core": 2}
    await store.close()


async def test_newer_version_db_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "hub.db"
    store = await Store.open(path, NEW)
    await store.close()
    before = _digest(path)
    with pytest.raises(StoreError, match="newer sovhub"):
        await Store.open(path, OLD)
    assert _digest(path) == before


async def test_corrupt_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "hub.db"
    path.write_bytes(b"this is not a database at all" * 100)
    before = _digest(path)
    with pytest.raises(StoreError, match="not a SQLite database"):
        await Store.open(path)
    assert _digest(path) == before


async def test_damaged_sqlite_pages_are_refused(tmp_path):
    path = tmp_path / "hub.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x TEXT)")
    con.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    con.commit()
    con.close()
    data = bytearray(path.read_bytes())
    data[4096:8192] = b"\xff" * 4096
    path.write_bytes(bytes(data))
    before = _digest(path)
    with pytest.raises(StoreError):
        await Store.open(path)
    assert _digest(path) == before


async def test_every_component_schema_applies_on_a_fresh_db(tmp_path):
    store = await Store.open(tmp_path / "hub.db")
    versions = await store.versions()
    assert versions == {name: len(steps) for name, steps in known_migrations().items()}
    tables = {r[0] for r in await store.db.execute_fetchall("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"jobs", "job_events", "conversations", "messages", "schedules", "costs", "processed_events",
            "kv"} <= tables
    mode = await store.db.execute_fetchall("PRAGMA journal_mode")
    assert mode[0][0] == "wal"
    await store.close()


async def test_processed_events_are_recorded_once(tmp_path):
    store = await Store.open(tmp_path / "hub.db")
    assert await store.mark_processed("matrix", "$e1") is True
    assert await store.mark_processed("matrix", "$e1") is False
    assert await store.is_processed("matrix", "$e1")
    await store.close()
