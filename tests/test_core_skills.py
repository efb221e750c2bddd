"""run_skill: one path that validates, checks permission, records a job and its events."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from hub.approval import Approval, grant_for_role
from hub.config import load_config
from hub.context import Context
from hub.core import Hub
from hub.errors import ApprovalDenied, InvalidParams, JobCancelled, PermissionDenied, SkillFailed, SkillTimeout
from hub.registry import Permission
from tests.helpers_skills import test_registry
from tests.waiting import wait_until


@pytest.fixture
async def hub(tmp_path):
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}}, environ={})
    hub = await Hub.start(config, skills=test_registry(), components=())
    yield hub
    await hub.stop()


async def test_a_successful_run_leaves_a_job_row_with_its_events_and_context(hub):
    ctx = Context.new("matrix", user="@alice:localhost")
    result = await hub.run_skill("echo", {"text": "hi", "times": 2}, ctx)
    assert result.text == "hi hi"
    [job] = await hub.jobs.list()
    assert job.status == "succeeded" and job.result == {"text": "hi hi"}
    assert job.context.origin == "matrix" and job.context.user == "@alice:localhost" and job.context.id == ctx.id
    types = [e["type"] for e in await hub.jobs.events(job.id)]
    assert types == ["queued", "started", "progress", "succeeded"]


async def test_bad_params_name_the_field_and_record_no_success(hub):
    with pytest.raises(InvalidParams) as err:
        await hub.run_skill("echo", {"text": "x", "times": 99}, Context.new("cli"))
    assert "times" in str(err.value) and "less than or equal to 10" in str(err.value)
    [job] = await hub.jobs.list()
    assert job.status == "rejected" and "times" in job.error
    assert [e["type"] for e in await hub.jobs.events(job.id)] == ["queued", "rejected"]


async def test_destructive_skill_without_permission_is_refused(hub):
    with pytest.raises(PermissionDenied, match="wipe needs destructive permission"):
        await hub.run_skill("wipe", {}, Context.new("mcp"), grant=Permission.write)
    [job] = await hub.jobs.list()
    assert job.status == "refused"


async def test_destructive_skill_runs_only_when_the_approver_says_yes(hub):
    async def no(*_):
        return False

    async def yes(*_):
        return True

    with pytest.raises(ApprovalDenied):
        await hub.run_skill("wipe", {}, Context.new("matrix"), grant=Permission.destructive, approver=no)
    result = await hub.run_skill("wipe", {}, Context.new("matrix"), grant=Permission.destructive, approver=yes)
    assert result.wiped is True
    statuses = sorted(j.status for j in await hub.jobs.list())
    assert statuses == ["denied", "succeeded"]


async def test_failure_and_timeout_are_recorded_with_their_error(hub):
    with pytest.raises(SkillFailed, match="the backend exploded"):
        await hub.run_skill("boom", {}, Context.new("cli"))
    with pytest.raises(SkillTimeout, match="timed out after 2 s"):
        await hub.run_skill("nap", {"seconds": 5}, Context.new("cli"))
    errors = {j.skill: (j.status, j.error) for j in await hub.jobs.list()}
    assert errors["boom"][0] == "failed" and "exploded" in errors["boom"][1]
    assert errors["nap"] == ("failed", "nap timed out after 2 s")


async def test_progress_reaches_subscribers_and_a_job_can_be_cancelled(hub):
    seen = []
    handle = await hub.start_skill("nap", {"seconds": 1.5}, Context.new("cli"))
    handle.on_progress(seen.append)
    await wait_until(lambda: seen, what="a progress report")
    assert seen[-1].message == "napping"
    assert await hub.jobs.cancel(handle.id) == "cancelled"
    with pytest.raises(JobCancelled):
        await handle.wait()
    assert (await hub.jobs.get(handle.id)).status == "cancelled"


async def test_events_on_the_bus_carry_the_callers_context(hub):
    seen = []
    hub.bus.listen("*", lambda e: seen.append((e.type, e.context.id)))
    ctx = Context.new("cron", user="schedule:nightly")
    await hub.run_skill("echo", {"text": "x"}, ctx)
    assert ("job_queued", ctx.id) in seen and ("job_finished", ctx.id) in seen
    [job] = await hub.jobs.list()
    assert job.job_class == "scheduled"


async def test_queued_jobs_survive_a_restart_and_run_again(tmp_path):
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}}, environ={})
    hub = await Hub.start(config, skills=test_registry(), components=())
    handle = await hub.start_skill("echo", {"text": "later"}, Context.new("cli"))
    handle._task.cancel()  # simulate a crash before it ran: the row stays queued
    hub.jobs._stopping = True
    await wait_until(handle._task.done, what="the interrupted run to end")
    await hub.stop()
    hub = await Hub.start(config, skills=test_registry(), components=())
    try:
        async def succeeded():
            job = await hub.jobs.get(handle.id)
            return job if job.status == "succeeded" else None

        job = await wait_until(succeeded, what="the requeued job to succeed")
        assert job.result == {"text": "later"}
        assert "requeued" in [e["type"] for e in await hub.jobs.events(handle.id)]
    finally:
        await hub.stop()


async def test_unknown_skill_lists_the_known_ones(hub):
    from hub.errors import UnknownSkill

    with pytest.raises(UnknownSkill, match="known: boom, echo, nap, wipe"):
        await hub.run_skill("nope", {}, Context.new("cli"))


async def test_a_queued_destructive_job_is_not_resumed_without_a_fresh_approval(tmp_path):
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}}, environ={})
    hub = await Hub.start(config, skills=test_registry(), components=())
    gate = asyncio.Event()

    async def slow_yes(*_):
        await gate.wait()
        return True

    handle = await hub.start_skill("wipe", {}, Context.new("matrix"), grant=Permission.destructive,
                                   approver=slow_yes)
    await hub.stop()
    with sqlite3.connect(config.storage.db_path) as con:  # as if the hub had died with the job queued
        con.execute("UPDATE jobs SET status='queued', error=NULL, finished_at=NULL WHERE id=?", (handle.id,))
    hub = await Hub.start(config, skills=test_registry(), components=())
    try:
        job = await hub.jobs.get(handle.id)
        assert job.status == "failed" and "fresh approval" in job.error
    finally:
        await hub.stop()


async def test_a_skill_with_side_effects_is_on_disk_as_running_before_it_acts(hub):
    seen = {}

    def look(event):  # a plain listener runs inline, before the skill's handler; a second connection reads the file
        with sqlite3.connect(hub.config.storage.db_path) as con:
            seen["status"] = con.execute("SELECT status FROM jobs WHERE id=?", (event.data["job_id"],)).fetchone()[0]

    hub.bus.listen("job_started", look)
    await hub.run_skill("wipe", {}, Context.new("cli"), grant=Permission.destructive)
    assert seen["status"] == "running"


async def test_a_refused_approval_ends_a_destructive_job_refused_with_its_reason_before_it_runs(hub):
    with pytest.raises(PermissionDenied, match="owner must approve in Matrix"):
        await hub.run_skill("wipe", {}, Context.new("mcp"), grant=Permission.destructive,
                            approval=Approval.refuse("owner must approve in Matrix"))
    [job] = await hub.jobs.list()
    assert (job.status, job.error) == ("refused", "owner must approve in Matrix")


async def test_the_approval_mode_decides_a_destructive_run_asked_or_granted_by_the_token(hub):
    asked = []

    async def no(skill, params, ctx):
        asked.append(skill.name)
        return False

    with pytest.raises(ApprovalDenied):
        await hub.run_skill("wipe", {}, Context.new("matrix"), grant=Permission.destructive, approval=Approval.ask(no))
    assert asked == ["wipe"]
    await hub.run_skill("wipe", {}, Context.new("cli"), grant=Permission.destructive, approval=Approval.token())
    with pytest.raises(PermissionDenied):  # a token below destructive is never an approval
        await hub.run_skill("wipe", {}, Context.new("mcp"), grant=grant_for_role("user"), approval=Approval.token())
    statuses = sorted(j.status for j in await hub.jobs.list())
    assert statuses == ["denied", "refused", "succeeded"]


async def test_a_skill_on_a_resident_is_handed_its_lease_as_run_lease(tmp_path):
    from hub.jobs import SkillRun
    from hub.registry import SkillRegistry, skill
    from tests.helpers_skills import Empty

    seen = {}

    @skill(name="on_gpu", description="uses a resident", params=Empty, result=Empty, resident="comfyui")
    async def on_gpu(run: SkillRun, params: Empty) -> Empty:
        seen["lease"] = (run.lease.resident, run.lease.base_url)
        return Empty()

    registry = SkillRegistry()
    registry.register(on_gpu)
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)},
                                          "residents": {"comfyui": {
                                              "base_url": "http://127.0.0.1:9", "kind": "image", "memory_gb": 1,
                                              "ready": {"url": "http://127.0.0.1:9/"}}}}, environ={})
    hub = await Hub.start(config, skills=registry, components=())
    try:
        await hub.run_skill("on_gpu", {}, Context.new("cli"))
    finally:
        await hub.stop()
    assert seen["lease"] == ("comfyui", "http://127.0.0.1:9")
