"""Scheduled skill runs: persisted in SQLite, fired by APScheduler, one catch-up, one instance at a time."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

from hub.config import load_config
from hub.core import Hub
from hub.cron import service as service_mod
from hub.cron.triggers import ScheduleError
from hub.jobs import SkillRun
from hub.registry import SkillRegistry, skill
from tests.helpers_skills import test_registry
from tests.waiting import wait_until

COMPONENTS = ("hub.cron.component",)
GATES: dict[str, asyncio.Event] = {}


class HoldParams(BaseModel):
    gate: str = "default"


class HoldResult(BaseModel):
    released: bool


@skill(name="hold", description="Wait until the test opens the gate", params=HoldParams, result=HoldResult,
       timeout_s=30)
async def hold(run: SkillRun, params: HoldParams) -> HoldResult:
    await GATES.setdefault(params.gate, asyncio.Event()).wait()
    return HoldResult(released=True)


def registry() -> SkillRegistry:
    reg = test_registry()
    reg.register(hold)
    return reg


def make_config(tmp_path, **extra: Any):
    return load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}, **extra}, environ={})


async def start(tmp_path, **extra: Any) -> Hub:
    return await Hub.start(make_config(tmp_path, **extra), skills=registry(), components=COMPONENTS)


async def runs_of(hub: Hub, name: str, limit: int = 50):
    return list(reversed(await hub.cron.history(name, limit)))


@pytest.fixture(autouse=True)
def _fresh_gates():
    GATES.clear()
    yield
    for gate in GATES.values():
        gate.set()


@pytest.fixture
async def hub(tmp_path):
    h = await start(tmp_path)
    yield h
    await h.stop()


async def test_a_schedule_added_at_run_time_survives_a_restart(tmp_path):
    hub = await start(tmp_path)
    added = await hub.cron.add("nightly", "0 6 * * *", "echo", {"text": "good morning"},
                                    timezone="Europe/Paris", room="!news:localhost")
    first_next = hub.cron.next_run("nightly")
    assert first_next is not None and first_next.timestamp() == pytest.approx(added.next_run_at)
    await hub.stop()

    hub = await start(tmp_path)
    try:
        again = await hub.cron.get("nightly")
        assert (again.skill, again.params, again.room, again.timezone, again.trigger.cron) == (
            "echo", {"text": "good morning"}, "!news:localhost", "Europe/Paris", "0 6 * * *")
        loaded = hub.cron.next_run("nightly")
        assert loaded is not None and loaded.timestamp() == pytest.approx(first_next.timestamp())
        assert loaded.astimezone(ZoneInfo("Europe/Paris")).hour == 6
    finally:
        await hub.stop()


async def test_three_slots_missed_while_down_give_exactly_one_catch_up_run_at_start(tmp_path):
    # An hourly slot whose latest occurrence was ~30 min ago: no real slot falls inside the test.
    latest = (time.time() - 1800) // 60 * 60
    minute = int(latest // 60 % 60)
    hub = await start(tmp_path)
    await hub.cron.add("hourly", f"{minute} * * * *", "echo", {"text": "tick"})
    await hub.stop()

    # The hub was down across three slots: the stored next run is the first of them.
    from hub.store import Store

    store = await Store.open(tmp_path / "sovhub.db")
    await store.db.execute("UPDATE schedules SET next_run_at = ? WHERE name = 'hourly'", (latest - 2 * 3600,))
    await store.close()

    hub = await start(tmp_path)
    try:
        async def finished():
            runs = await runs_of(hub, "hourly")
            return runs if runs and runs[-1].status == "succeeded" else None

        await wait_until(finished, what="the caught-up run to finish")
        await asyncio.sleep(0.5)  # the observation window of a negative claim: a second catch-up would have fired
        runs = await runs_of(hub, "hourly")
        assert [r.status for r in runs] == ["succeeded"]
        assert runs[0].scheduled_for == latest  # coalesced into the latest missed slot
        jobs = [j for j in await hub.jobs.list() if j.skill == "echo"]
        assert len(jobs) == 1 and jobs[0].job_class == "scheduled" and jobs[0].context.origin == "cron"
        assert jobs[0].context.user == "schedule:hourly"
        schedule = await hub.cron.get("hourly")
        assert schedule.next_run_at == latest + 3600  # the next slot is in the future again
    finally:
        await hub.stop()


async def test_a_slot_missed_by_more_than_its_grace_time_is_recorded_as_missed_and_not_run(tmp_path):
    hub = await start(tmp_path)
    await hub.cron.add("strict", "every 1h", "echo", {"text": "late"}, grace_s=30, room="!r:localhost")
    announced: list[dict] = []
    await hub.stop()
    from hub.store import Store

    store = await Store.open(tmp_path / "sovhub.db")
    # the only slot since then is 10 minutes old, far past the 30 s grace time
    await store.db.execute("UPDATE schedules SET next_run_at = ? WHERE name = 'strict'", (time.time() - 600,))
    await store.close()

    hub = await start(tmp_path)
    hub.bus.listen("announcement", lambda e: announced.append(e.data))
    try:
        runs = await wait_until(lambda: runs_of(hub, "strict"), what="a run of the schedule")
        assert [r.status for r in runs] == ["missed"]
        assert "missed by" in runs[0].error and "grace time 30.0 s" in runs[0].error
        assert not [j for j in await hub.jobs.list() if j.skill == "echo"]
        await wait_until(lambda: announced, what="the announcement")
        assert announced[0]["status"] == "missed" and announced[0]["room"] == "!r:localhost"
    finally:
        await hub.stop()


async def test_a_run_still_going_makes_the_next_slots_skip_and_record_it(hub):
    await hub.cron.add("busy", "every 0.3s", "hold", {"gate": "busy"})

    async def skipped_twice():
        runs = await runs_of(hub, "busy")
        return runs if sum(r.status == "skipped" for r in runs) >= 2 else None

    runs = await wait_until(skipped_twice, what="two skipped slots")
    holds = [j for j in await hub.jobs.list() if j.skill == "hold"]
    assert len(holds) == 1, "a second instance started while the first still ran"
    assert runs[0].status == "running" and runs[0].job_id == holds[0].id
    assert all(r.status == "skipped" and holds[0].id in r.error for r in runs[1:])
    assert "still running" in runs[1].error

    GATES["busy"].set()

    async def first_done():
        runs = await runs_of(hub, "busy")
        return runs[0].status == "succeeded" and len([j for j in await hub.jobs.list() if j.skill == "hold"]) >= 2

    # the next slot after the first run ended starts a new instance
    await wait_until(first_done, what="the first run to end")
    await hub.cron.pause("busy")


@pytest.mark.parametrize(("trigger", "skill_name", "params", "message"), [
    ("61 * * * *", "echo", {"text": "x"},
     "invalid cron expression '61 * * * *': minute field '61': the last value (61) is higher than the maximum value"),
    ("0 6 * *", "echo", {"text": "x"}, "invalid cron expression '0 6 * *': it has 4 field(s), expected 5"),
    ("0 6 * * 9", "echo", {"text": "x"}, "day-of-week '9' is not a day"),
    ("0 6 * * *", "podcast", {}, "unknown skill 'podcast' (known: boom, echo, hold, nap, wipe)"),
    ("0 6 * * *", "echo", {}, "invalid arguments for echo: text: Field required"),
    ("0 6 * * *", "echo", {"text": "x", "times": 99}, "invalid arguments for echo: times: Input should be less than"),
    ("0 6 * * *", "echo", {"text": "x", "article": "latest"},
     "invalid arguments for echo: no parameter 'article' (parameters: text, times)"),
    ("0 6 * * *", "wipe", {}, "skill wipe is destructive; a schedule runs unattended"),
    ("every 0s", "echo", {"text": "x"}, "invalid interval '0s': it must be longer than 0 seconds"),
    ("at 2020-01-01T06:00", "echo", {"text": "x"}, "the one-shot time 2020-01-01T06:00 (UTC) is in the past"),
])
async def test_bad_definitions_are_refused_with_a_precise_message_and_nothing_is_created(
        hub, trigger, skill_name, params, message):
    with pytest.raises(ScheduleError) as err:
        await hub.cron.add("bad", trigger, skill_name, params)
    assert message in str(err.value)
    assert await hub.cron.list() == []
    assert hub.cron.next_run("bad") is None


async def test_a_bad_time_zone_or_room_is_refused(hub):
    with pytest.raises(ScheduleError, match="unknown time zone 'Europe/Pariss'"):
        await hub.cron.add("tz", "0 6 * * *", "echo", {"text": "x"}, timezone="Europe/Pariss")
    with pytest.raises(ScheduleError, match="invalid room 'news'"):
        await hub.cron.add("room", "0 6 * * *", "echo", {"text": "x"}, room="news")
    await hub.cron.add("dup", "0 6 * * *", "echo", {"text": "x"})
    with pytest.raises(ScheduleError, match="a schedule named 'dup' already exists"):
        await hub.cron.add("dup", "0 7 * * *", "echo", {"text": "y"})
    assert [s.name for s in await hub.cron.list()] == ["dup"]


async def test_a_run_is_a_cron_job_announced_to_its_room_with_its_result(hub):
    announced: list[Any] = []
    hub.bus.listen("announcement", lambda e: announced.append(e))
    await hub.cron.add("soon", "every 0.2s", "echo", {"text": "hello", "times": 2}, room="!room:localhost")
    await wait_until(lambda: announced, what="the announcement")
    await hub.cron.pause("soon")
    event = announced[0]
    assert event.context.origin == "cron" and event.context.user == "schedule:soon"
    data = event.data
    assert set(data) == {"room", "text", "schedule", "job_id", "status", "files"}
    assert (data["room"], data["schedule"], data["status"]) == ("!room:localhost", "soon", "succeeded")
    assert data["files"] == []  # a text result has no artifact to upload
    assert data["text"].startswith("✅ soon (echo) done in ") and data["text"].endswith(": hello hello")
    job = await hub.jobs.get(data["job_id"])
    assert job.job_class == "scheduled" and job.context.id == event.context.id
    run = (await runs_of(hub, "soon"))[0]
    assert run.status == "succeeded" and run.job_id == job.id and run.duration_s is not None


async def test_a_failed_run_is_announced_with_its_error_in_the_default_room(tmp_path):
    hub = await start(tmp_path, matrix={"announce_room": "!ops:localhost"})
    announced: list[dict] = []
    hub.bus.listen("announcement", lambda e: announced.append(e.data))
    try:
        await hub.cron.add("broken", "every 0.2s", "boom", {})
        await wait_until(lambda: announced, what="the announcement")
        await hub.cron.pause("broken")
        data = announced[0]
        assert data["room"] == "!ops:localhost" and data["status"] == "failed"
        assert "❌ broken (boom) failed after" in data["text"] and "the backend exploded" in data["text"]
        run = (await runs_of(hub, "broken"))[0]
        assert run.status == "failed" and "the backend exploded" in run.error
        assert (await hub.cron.get("broken")).last_status == "failed"
    finally:
        await hub.stop()


async def test_without_any_room_the_result_is_logged_and_left_to_the_rooms_that_opted_in(hub, caplog):
    announced: list[dict] = []
    hub.bus.listen("announcement", lambda e: announced.append(e.data))
    caplog.set_level(logging.INFO, logger="hub.cron.service")
    await hub.cron.add("quiet", "every 0.2s", "echo", {"text": "psst"})
    await wait_until(lambda: [r for r in caplog.records if "no announcement room" in r.getMessage()],
                     what="the no-room warning")
    await hub.cron.pause("quiet")
    assert any("psst" in r.getMessage() for r in caplog.records)
    assert announced and announced[0]["room"] is None and announced[0]["text"].endswith(": psst")


async def test_a_one_shot_runs_once_and_is_then_done(hub):
    from datetime import UTC, datetime, timedelta

    when = (datetime.now(UTC) + timedelta(seconds=0.4)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    await hub.cron.add("once", f"at {when}", "echo", {"text": "once"})

    async def done():
        s = await hub.cron.get("once")
        return s.state == "done" and s.last_status == "succeeded"

    await wait_until(done, what="the run to end")
    assert hub.cron.next_run("once") is None
    with pytest.raises(ScheduleError, match="one-shot and has already run"):
        await hub.cron.resume("once")


async def test_an_interval_starts_one_interval_after_it_is_added(hub):
    added = await hub.cron.add("hourly", "every 1h", "echo", {"text": "x"})
    assert added.next_run_at == pytest.approx(added.created_at + 3600)
    assert hub.cron.next_run("hourly").timestamp() == pytest.approx(added.next_run_at)


async def test_pause_and_resume_unload_and_reload_the_timetable(hub):
    await hub.cron.add("daily", "@daily", "echo", {"text": "x"}, timezone="Asia/Tokyo")
    assert hub.cron.next_run("daily") is not None
    paused = await hub.cron.pause("daily")
    assert paused.state == "paused" and paused.next_run_at is None and hub.cron.next_run("daily") is None
    resumed = await hub.cron.resume("daily")
    assert resumed.state == "active" and hub.cron.next_run("daily").timestamp() == resumed.next_run_at
    status = (await hub.status())["schedules"]
    assert status["firing_here"] and status["loaded"] == 1 and status["next"]["schedule"] == "daily"
    await hub.cron.remove("daily")
    assert await hub.cron.list() == [] and hub.cron.next_run("daily") is None
    with pytest.raises(ScheduleError, match="no schedule named 'daily'"):
        await hub.cron.pause("daily")


async def test_config_schedules_are_synced_at_start_and_cannot_be_removed_at_run_time(tmp_path):
    entry = {"name": "digest", "skill": "echo", "params": {"text": "news"}, "cron": "30 7 * * 1-5",
             "timezone": "Europe/Paris", "room": "!digest:localhost"}
    hub = await start(tmp_path, schedules=[entry])
    try:
        digest = await hub.cron.get("digest")
        assert digest.source == "config" and digest.trigger.cron == "30 7 * * 1-5"
        nxt = hub.cron.next_run("digest").astimezone(ZoneInfo("Europe/Paris"))
        assert (nxt.hour, nxt.minute) == (7, 30) and nxt.weekday() < 5  # crontab 1-5 = Monday to Friday
        with pytest.raises(ScheduleError, match="defined in the config file; remove it there"):
            await hub.cron.remove("digest")
        with pytest.raises(ScheduleError, match="already exists \\(defined in the config file\\)"):
            await hub.cron.add("digest", "0 6 * * *", "echo", {"text": "x"})
    finally:
        await hub.stop()
    # Changed in the config: updated; disabled there: paused, and only the config re-enables it.
    hub = await start(tmp_path, schedules=[{**entry, "cron": "0 8 * * *", "enabled": False}])
    try:
        digest = await hub.cron.get("digest")
        assert digest.trigger.cron == "0 8 * * *" and digest.state == "paused"
        assert hub.cron.next_run("digest") is None
        with pytest.raises(ScheduleError, match="disabled in the config file \\(enabled: false\\); enable it there"):
            await hub.cron.resume("digest")
    finally:
        await hub.stop()
    hub = await start(tmp_path, schedules=[{**entry, "cron": "0 8 * * *"}])
    try:
        assert (await hub.cron.get("digest")).state == "active" and hub.cron.next_run("digest")
        await hub.cron.pause("digest")  # a pause at run time survives a restart with the same config
    finally:
        await hub.stop()
    hub = await start(tmp_path, schedules=[{**entry, "cron": "0 8 * * *"}])
    try:
        assert (await hub.cron.get("digest")).state == "paused"
    finally:
        await hub.stop()
    # Gone from the config: removed.
    hub = await start(tmp_path)
    try:
        assert await hub.cron.list() == []
    finally:
        await hub.stop()


async def test_a_config_schedule_with_an_unknown_skill_stops_the_hub_with_a_clear_error(tmp_path):
    from hub.errors import ConfigError

    with pytest.raises(ConfigError, match=r"schedules\[0\] \(x\): unknown skill 'nope'"):
        await start(tmp_path, schedules=[{"name": "x", "skill": "nope", "cron": "0 6 * * *"}])


async def test_only_the_process_holding_the_lease_fires_schedules(tmp_path):
    first = await start(tmp_path)
    second = await start(tmp_path)
    try:
        assert first.cron.active and not second.cron.active
        await second.cron.add("shared", "0 6 * * *", "echo", {"text": "x"})
        assert second.cron.next_run("shared") is None
        await first.cron.tick()  # the poll does this every few seconds
        assert first.cron.next_run("shared") is not None
    finally:
        await first.stop()
    await second.cron.tick()  # the lease was released: the other process takes over
    try:
        assert second.cron.active and second.cron.next_run("shared") is not None
    finally:
        await second.stop()


async def test_chat_command_adds_lists_and_removes_with_the_room_as_default(hub):
    from hub.context import Context

    ctx = Context.new("matrix", user="@owner:localhost")
    text = await hub.cron.chat_command("add", '"0 6 * * *" echo text=latest --tz Europe/Paris', ctx,
                                            room="!here:localhost")
    assert text.startswith("Scheduled **echo**: `echo` cron '0 6 * * *' (Europe/Paris); next run ")
    assert "results go to !here:localhost" in text
    text = await hub.cron.chat_command("add", "standup 0 9 * * 1-5 echo text=standup", ctx, room="!r:x")
    assert "Scheduled **standup**" in text
    listing = await hub.cron.chat_command("list", "", ctx, room="!r:x")
    assert "**echo** (active)" in listing and "**standup** (active)" in listing
    assert (await hub.cron.get("echo")).created_by == "@owner:localhost"
    with pytest.raises(ScheduleError, match="unknown skill 'podcast'"):
        await hub.cron.chat_command("add", '"0 6 * * *" podcast article=latest', ctx, room="!r:x")
    text = await hub.cron.chat_command("add", "demo every 1h echo text=x", Context.new("cli"), room="demo")
    assert "results go to" not in text and (await hub.cron.get("demo")).room is None
    await hub.cron.remove("demo")
    assert await hub.cron.chat_command("rm", "standup", ctx, room="!r:x") == "Removed schedule **standup**."
    assert [s.name for s in await hub.cron.list()] == ["echo"]


async def test_a_change_written_by_the_cli_reaches_a_running_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(service_mod, "DEFAULT_POLL_S", 0.2)
    hub = await start(tmp_path)
    try:
        from hub.cron.book import ScheduleBook
        from hub.cron.triggers import parse_trigger
        from hub.store import Store

        store = await Store.open(tmp_path / "sovhub.db")
        await ScheduleBook(store, registry()).add(name="from_cli", trigger=parse_trigger("0 6 * * *"),
                                                  skill="echo", params={"text": "x"})
        await store.close()

        async def loaded():
            return hub.cron.next_run("from_cli")

        await wait_until(loaded, timeout=3, what="the schedules to load")
    finally:
        await hub.stop()


@pytest.mark.parametrize(("text", "expected"), [
    ('"0 6 * * *" podcast article=latest', (None, "0 6 * * *", "UTC", "podcast", {"article": "latest"})),
    ("0 6 * * * podcast article=latest", (None, "0 6 * * *", "UTC", "podcast", {"article": "latest"})),
    ("nightly 0 6 * * 1-5 Europe/Paris podcast article=latest",
     ("nightly", "0 6 * * 1-5", "Europe/Paris", "podcast", {"article": "latest"})),
    ("every 15m echo text=hi times=2", (None, "every 15m", "UTC", "echo", {"text": "hi", "times": 2})),
    ("every 15 minutes echo text=hi", (None, "every 15minutes", "UTC", "echo", {"text": "hi"})),
    ("every hour echo text=hi", (None, "every hour", "UTC", "echo", {"text": "hi"})),
    ('digest @daily echo "text=good morning" --tz Asia/Tokyo',
     ("digest", "@daily", "Asia/Tokyo", "echo", {"text": "good morning"})),
    ("at 2026-12-24 18:00 echo text=x", (None, "at 2026-12-24T18:00", "UTC", "echo", {"text": "x"})),
])
def test_the_chat_form_of_add_reads_bare_cron_fields_zones_and_arguments(text, expected):
    from hub.cron.parse import parse_add

    req = parse_add(text)
    assert (req.name, req.trigger, req.timezone, req.skill, req.params) == expected


def test_the_chat_form_of_add_explains_what_is_missing():
    from hub.cron.parse import parse_add

    with pytest.raises(ScheduleError, match="a cron expression needs 5 fields"):
        parse_add("0 6 * podcast")
    with pytest.raises(ScheduleError, match="missing the skill to run"):
        parse_add("nightly every 1h")
