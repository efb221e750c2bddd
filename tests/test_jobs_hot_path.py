"""The fast path of a job keeps its promises: a failed job nobody waits for is not reported as a
lost exception, every job still fires its three events with its Context, and a job that is not a
schedule's leaves no listener task behind."""

from __future__ import annotations

import gc
import weakref

from hub.config import load_config
from hub.context import Context
from hub.core import Hub
from hub.errors import SkillFailed
from hub.jobs import SkillRun
from hub.registry import skill
from tests.helpers_skills import EchoParams, EchoResult, test_registry
from tests.waiting import wait_until


@skill(name="refuse", description="Fails with a hub error (nothing logged, nothing holds the job)",
       params=EchoParams, result=EchoResult)
async def refuse(run: SkillRun, params: EchoParams) -> EchoResult:
    raise SkillFailed(f"refused {params.text}")


async def _hub(tmp_path) -> Hub:
    registry = test_registry()
    registry.register(refuse)
    return await Hub.start(load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}}), skills=registry)


async def test_a_failed_job_nobody_waits_for_is_never_reported_as_a_lost_exception(tmp_path):
    import asyncio

    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: reported.append(ctx))
    hub = await _hub(tmp_path)
    try:
        handle = await hub.start_skill("refuse", {"text": "x"}, Context.new("cli"))
        await wait_until(lambda: handle.done, what="the failing job ended")
        gone = weakref.ref(handle._done)
        handle = None  # nobody holds the job's future any more
        gc.collect()
        await asyncio.sleep(0)
        assert gone() is None, "the job's future is still referenced: the check below proves nothing"
        assert not [r for r in reported if "never retrieved" in str(r.get("message"))]
        assert (await hub.jobs.list(1))[0].status == "failed"
    finally:
        await hub.stop()
        loop.set_exception_handler(previous)


async def test_every_job_fires_queued_started_finished_with_its_context_and_leaves_no_listener_task(tmp_path):
    hub = await _hub(tmp_path)
    try:
        seen: list[tuple[str, str]] = []
        for kind in ("job_queued", "job_started", "job_finished"):
            hub.bus.listen(kind, lambda e: seen.append((e.type, e.context.id)))
        ctx = Context.new("mcp", user="someone")
        await hub.run_skill("echo", {"text": "x"}, ctx)
        assert seen == [("job_queued", ctx.id), ("job_started", ctx.id), ("job_finished", ctx.id)]
        # the schedules' listener spawns a task only for a schedule's job (fire does not yield)
        await hub.bus.fire("job_finished", {"job_id": "x", "skill": "echo", "status": "succeeded"}, ctx)
        assert not hub.bus._pending
        events = [e["type"] for e in await hub.jobs.events((await hub.jobs.list(1))[0].id)]
        assert events == ["queued", "started", "progress", "succeeded"]
    finally:
        await hub.stop()
