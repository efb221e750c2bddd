"""Schedules survive store faults and crashes: a locked DB at start-up delays firing, never stops it."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel

from hub.core import Hub
from hub.cron import service as service_mod
from hub.cron.book import ScheduleBook
from hub.jobs import SkillRun
from hub.registry import Permission, SkillRegistry, skill
from hub.store import Store
from tests.test_cron import COMPONENTS, make_config, registry, runs_of, start
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]


def _soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")


async def test_a_store_locked_at_start_up_delays_the_schedules_until_it_recovers(tmp_path, monkeypatch):
    monkeypatch.setattr(service_mod, "DEFAULT_POLL_S", 0.2)
    hub = await start(tmp_path)
    await hub.stop()
    blocker = sqlite3.connect(tmp_path / "sovhub.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock past the busy timeout
    hub = await start(tmp_path)
    try:
        status = await hub.status()
        assert status["schedules"]["firing_here"] is False
        assert "database is locked" in status["schedules"]["error"]
        assert status["storage"]["state"] == "failing" and status["storage"]["where"] == "schedules"
        assert status["storage"]["errors_total"] >= 1
        blocker.execute("ROLLBACK")
        blocker.close()

        async def firing():
            return hub.cron.active

        await wait_until(firing, timeout=10, what="the schedule to fire")
        await hub.cron.add("later", f"at {_soon(0.3)}", "echo", {"text": "still runs"})

        async def ran():
            runs = await runs_of(hub, "later")
            return runs and runs[-1].status == "succeeded"

        await wait_until(ran, what="the run to succeed")
        status = await hub.status()
        assert "error" not in status["schedules"] and status["storage"]["state"] == "ok"
    finally:
        await hub.stop()


# -- kill -9 at every step of a slot -------------------------------------------------------------------
KILL_STEPS = ("before_slot", "after_slot", "after_job_row", "in_skill", "before_close")


class MarkParams(BaseModel):
    label: str = "run"


class MarkResult(BaseModel):
    marked: bool


@skill(name="mark", description="Append a line to $MARK_FILE: the file counts real runs (test)", params=MarkParams,
       result=MarkResult, permission=Permission.write, timeout_s=30)
async def mark(run: SkillRun, params: MarkParams) -> MarkResult:
    with open(os.environ["MARK_FILE"], "a") as f:
        f.write(params.label + "\n")
        f.flush()
        os.fsync(f.fileno())
    if os.environ.get("KILL_AT") == "in_skill":
        _die()
    return MarkResult(marked=True)


def _registry() -> SkillRegistry:
    reg = registry()
    reg.register(mark)
    return reg


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def child_main() -> None:
    """A hub process that fires the due slot and is killed at the step named by $KILL_AT."""
    step = os.environ["KILL_AT"]
    take_slot, finish_run, start_skill = ScheduleBook.take_slot, ScheduleBook.finish_run, Hub.start_skill

    async def take_slot_then(self, *args, **kwargs):
        if step == "before_slot":
            _die()
        run_id = await take_slot(self, *args, **kwargs)
        if step == "after_slot":
            _die()
        return run_id

    async def start_skill_then(self, *args, **kwargs):
        handle = await start_skill(self, *args, **kwargs)
        if step == "after_job_row":
            _die()
        return handle

    async def finish_run_then(self, *args, **kwargs):
        if step == "before_close" and kwargs.get("context_id"):
            _die()
        return await finish_run(self, *args, **kwargs)

    ScheduleBook.take_slot, ScheduleBook.finish_run, Hub.start_skill = take_slot_then, finish_run_then, start_skill_then

    async def run() -> None:
        hub = await Hub.start(make_config(os.environ["DATA_DIR"]), skills=_registry(), components=COMPONENTS)
        await asyncio.sleep(20)  # the hub keeps running until the kill, which comes long before
        await hub.stop()

    asyncio.run(run())


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["one-shot", "periodic"])
@pytest.mark.parametrize("step", KILL_STEPS)
async def test_a_kill_at_any_step_of_a_slot_still_runs_it_exactly_once_after_the_restart(
        tmp_path, monkeypatch, kind, step):
    monkeypatch.setattr(service_mod, "DEFAULT_POLL_S", 0.2)
    marks = tmp_path / "marks.txt"
    monkeypatch.setenv("MARK_FILE", str(marks))
    hub = await Hub.start(make_config(tmp_path), skills=_registry(), components=COMPONENTS)
    trigger = f"at {_soon(0.5)}" if kind == "one-shot" else "every 1h"
    await hub.cron.add("slot", trigger, "mark", {"label": step})
    await hub.stop()
    if kind == "periodic":  # its first slot is due now
        store = await Store.open(tmp_path / "sovhub.db")
        await store.db.execute("UPDATE schedules SET next_run_at = ? WHERE name = 'slot'", (time.time(),))
        await store.close()
    await asyncio.sleep(0.5)  # the wall clock is the condition: the one-shot slot (0.5 s ahead) comes due

    env = {**os.environ, "PYTHONPATH": str(REPO), "KILL_AT": step, "DATA_DIR": str(tmp_path)}
    child = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", "from tests.test_cron_faults import child_main; child_main()"],
        cwd=REPO, env=env, capture_output=True, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]

    monkeypatch.delenv("KILL_AT", raising=False)
    hub = await Hub.start(make_config(tmp_path), skills=_registry(), components=COMPONENTS)
    try:
        async def closed():
            runs = await runs_of(hub, "slot")
            return runs if runs and all(r.status not in ("queued", "running") for r in runs) else None

        runs = await wait_until(closed, timeout=10, what="every run to close")
        await asyncio.sleep(0.6)  # the observation window of a negative claim: a second run would have started
        runs = await runs_of(hub, "slot")
        expected = "failed" if step == "in_skill" else "succeeded"
        assert [r.status for r in runs] == [expected], [(r.status, r.error) for r in runs]
        assert marks.read_text().splitlines() == [step]
        jobs = [j for j in await hub.jobs.list() if j.skill == "mark"]
        assert len(jobs) == 1 and jobs[0].status == expected and runs[0].job_id == jobs[0].id
        schedule = await hub.cron.get("slot")
        if kind == "one-shot":
            assert schedule.state == "done"
        else:
            assert schedule.next_run_at > time.time() + 1800
    finally:
        await hub.stop()


async def test_a_slot_that_cannot_be_written_fires_once_the_store_can_write_again(tmp_path, monkeypatch):
    monkeypatch.setattr(service_mod, "DEFAULT_POLL_S", 0.2)
    hub = await start(tmp_path)
    blocker = sqlite3.connect(tmp_path / "sovhub.db", isolation_level=None)
    try:
        await hub.cron.add("locked", f"at {_soon(0.3)}", "echo", {"text": "late but once"})
        blocker.execute("BEGIN IMMEDIATE")  # the slot comes while another process holds the write lock

        async def failed_once():
            return hub.store.health.errors_total >= 1

        await wait_until(failed_once, timeout=15, what="the first attempt to fail")
        assert not await runs_of(hub, "locked")
        blocker.execute("ROLLBACK")

        async def ran():
            runs = await runs_of(hub, "locked")
            return runs and runs[-1].status == "succeeded"

        await wait_until(ran, timeout=15, what="the run to succeed")
        await asyncio.sleep(0.5)  # the observation window of a negative claim: no second run
        assert [r.status for r in await runs_of(hub, "locked")] == ["succeeded"]
        assert (await hub.cron.get("locked")).state == "done"
    finally:
        blocker.close()
        await hub.stop()
