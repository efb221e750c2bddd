"""Store faults lose nothing: a batch that cannot be written stays queued, is retried, and says why."""

from __future__ import annotations

import time

import pytest

from hub.config import load_config
from hub.context import Context
from hub.core import Hub
from hub.errors import StoreError, UnknownJob
from hub.store import Store
from tests.helpers_skills import test_registry
from tests.storage_helpers import disk_full, fill_disk, free_disk
from tests.waiting import wait_until

BIG = "x" * 20_000  # each row needs new pages


def _job_row(job_id: str) -> tuple[str, tuple]:
    return ("INSERT INTO jobs(id, skill, params, status, context, origin, created_at) "
            "VALUES (?, 'echo', ?, 'queued', '{}', 'cli', ?)", (job_id, BIG, time.time()))


async def _ids(store: Store) -> list[str]:
    return [r[0] for r in await store.db.execute_fetchall("SELECT id FROM jobs ORDER BY id")]


async def test_a_batch_that_fails_on_a_full_disk_stays_queued_and_is_written_once_there_is_room(tmp_path):
    store = await Store.open(tmp_path / "hub.db")
    try:
        await fill_disk(store)
        for i in range(5):
            store.writer.add(*_job_row(f"job{i}"))
        with pytest.raises(StoreError, match=r"storage full \(database or disk is full\)") as info:
            await store.flush()
        assert "rollback" not in str(info.value)
        assert store.writer.pending == 5
        assert store.health.state == "full" and store.health.errors_total >= 1
        store.writer.add(*_job_row("job5"))  # rows keep coming while the disk is full
        await free_disk(store)
        # the background retry writes them, no flush() call
        await wait_until(lambda: not store.writer.pending, what="the queued rows written")
        assert store.writer.pending == 0
        assert await _ids(store) == [f"job{i}" for i in range(6)]
        assert store.health.state == "ok"
    finally:
        await store.close()


async def test_a_row_sqlite_refuses_is_dropped_alone_and_does_not_block_the_queue(tmp_path):
    store = await Store.open(tmp_path / "hub.db")
    try:
        store.writer.add(*_job_row("a"))
        store.writer.add(*_job_row("a"))  # duplicate primary key: refused for what it says
        store.writer.add(*_job_row("b"))
        await store.flush()
        assert await _ids(store) == ["a", "b"]
        assert store.writer.pending == 0
        assert store.health.errors_total == 1
    finally:
        await store.close()


async def test_a_job_started_on_a_full_disk_is_never_reported_unknown(tmp_path):
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}}, environ={})
    hub = await Hub.start(config, skills=test_registry(), components=())
    try:
        async with disk_full(hub.store):
            handle = await hub.start_skill("echo", {"text": BIG}, Context.new("mcp", user="t"))
            await handle.wait()
            with pytest.raises(StoreError, match="storage full") as info:
                await hub.jobs.get(handle.id)
            assert not isinstance(info.value, UnknownJob)
            status = await hub.status()
            assert status["storage"]["state"] == "full"
        record = await hub.jobs.get(handle.id)
        assert record.status == "succeeded" and record.result == {"text": BIG}
        assert (await hub.status())["storage"]["state"] == "ok"
    finally:
        await hub.stop()


async def test_a_caller_chosen_job_id_on_a_full_disk_is_refused_and_ends_failed_never_runs_later(tmp_path):
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}}, environ={})
    hub = await Hub.start(config, skills=test_registry(), components=())
    try:
        async with disk_full(hub.store):
            with pytest.raises(StoreError, match="storage full"):
                await hub.start_skill("echo", {"text": "x"}, Context.new("mcp", user="t"), job_id="chosen1")
            assert "chosen1" not in hub.jobs.active
        record = await hub.jobs.get("chosen1")
        assert record.status == "failed" and "storage full" in record.error and record.result is None
    finally:
        await hub.stop()
    hub = await Hub.start(config, skills=test_registry(), components=())  # nothing to resume
    try:
        assert (await hub.jobs.get("chosen1")).status == "failed" and not hub.jobs.active
    finally:
        await hub.stop()


async def test_a_flush_cancelled_mid_write_leaves_every_row_written_exactly_once(tmp_path):
    """A reader that gives up while its flush is on the write thread: the batch is written once, and
    the next flush (the next reader's) returns only once those rows are on disk."""
    import asyncio

    store = await Store.open(tmp_path / "hub.db")
    try:
        for round_ in range(20):
            for i in range(5):
                store.writer.add(*_job_row(f"r{round_:02d}-{i}"))
            reader = asyncio.ensure_future(store.flush())
            await asyncio.sleep(0)  # the batch is handed to the write thread
            reader.cancel()
            store.writer.add(*_job_row(f"r{round_:02d}-late"))  # a row that arrives meanwhile
            await store.flush()
            assert len(await _ids(store)) == 6 * (round_ + 1)
        assert await _ids(store) == sorted(f"r{r:02d}-{s}" for r in range(20) for s in [*map(str, range(5)), "late"])
        assert store.health.errors_total == 0 and store.writer.pending == 0
    finally:
        await store.close()
