"""The operator's GPU controls against the real runtime and stand-in residents (process driver):
load, unload, pin, queue limit, TTL and schedule-aware preloading, each a request the policy
accepts or refuses with a reason."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from hub.context import Context
from hub.gpu.model import Expected
from hub.gpu.runtime import GpuQueueFull
from tests.test_gpu_runtime import make_scheduler, running
from tests.waiting import wait_until

CTX = Context.new("cli")


async def until(cond, timeout: float = 60.0) -> None:
    """`wait_until` with room for a swap of real stand-in processes on a loaded machine."""
    await wait_until(cond, timeout=timeout, what="the residents to reach the expected phases")


def phase(s, name: str) -> str:
    return s.snapshot().residents[name]["phase"]


@pytest.fixture
async def sched(tmp_path):
    made = []

    def make(**kw):
        s = make_scheduler(tmp_path, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        await s.close()
        for d in s.drivers.values():
            await d.stop(5)


async def test_load_unload_and_pin_are_requests_the_scheduler_answers(sched):
    s = sched()
    await s.start()
    await until(lambda: phase(s, "sglang") == "ready")
    assert not (await s.control("load", "sglang")).ok  # already loaded: refused with the reason
    r = await s.control("load", "comfyui", by="@owner:hub")
    assert r.ok and "loading comfyui" in r.message
    await until(lambda: phase(s, "comfyui") == "ready")
    assert await running(s) == ["comfyui"]

    # a job running on it: the unload is refused, and says why
    release = asyncio.Event()

    async def job():
        async with s.lease("comfyui", job_id="img-1", context=CTX, est_seconds=5):
            await release.wait()

    t = asyncio.create_task(job())
    await until(lambda: s.snapshot().busy_with == ["img-1"])
    refused = await s.control("unload", "comfyui")
    assert not refused.ok and "a job is running on comfyui (img-1)" in refused.message
    release.set()
    await t

    # pinned: nothing evicts it, an unload is refused naming who pinned it, and the pin expires
    p = await s.control("pin", "comfyui", by="@owner:hub", seconds=2.0)
    assert p.ok
    info = s.snapshot().residents["comfyui"]["pinned"]
    assert info["by"] == "@owner:hub" and 0 < info["left_s"] <= 2.0
    assert "pinned by @owner:hub" in (await s.control("unload", "comfyui")).message
    assert "cannot share the GPU" in (await s.control("load", "tts")).message
    assert not (await s.control("pin", "comfyui", seconds=10 * 3600)).ok  # past pin_max_s
    await until(lambda: s.snapshot().residents["comfyui"]["pinned"] is None, timeout=10)  # the pin expired

    # an accepted unload: the policy carries it out and does not bring the resident back by itself
    assert (await s.control("unload")).ok
    await until(lambda: phase(s, "comfyui") == "stopped")
    await until(lambda: phase(s, "sglang") == "ready")  # the default returns when nothing waits
    assert (await s.control("unload", "sglang")).ok
    await until(lambda: phase(s, "sglang") == "stopped")
    await asyncio.sleep(1.0)  # the observation window of a negative claim: nothing reloads by itself
    assert await running(s) == []  # parked: the idle return does not reload what the operator unloaded
    async with s.lease("sglang", job_id="chat-1", context=CTX, job_class="interactive", est_seconds=1):
        assert await running(s) == ["sglang"]  # work that asks for it brings it back


async def test_a_lease_above_the_queue_limit_is_refused_with_an_eta(sched):
    s = sched()
    from dataclasses import replace
    from types import MappingProxyType

    specs = dict(s.state.specs)
    specs["comfyui"] = replace(specs["comfyui"], queue_limit=1)
    s.state = replace(s.state, specs=MappingProxyType(specs))
    await s.start()
    hold = asyncio.Event()

    async def job(i):
        async with s.lease("comfyui", job_id=f"img-{i}", context=CTX, est_seconds=30):
            await hold.wait()

    tasks = [asyncio.create_task(job(0))]
    await until(lambda: s.snapshot().busy_with == ["img-0"])
    tasks.append(asyncio.create_task(job(1)))
    await until(lambda: len(s.snapshot().queue) == 1)
    with pytest.raises(GpuQueueFull) as exc:
        async with s.lease("comfyui", job_id="img-2", context=CTX, est_seconds=30):
            pass
    assert "queue limit" in str(exc.value) and exc.value.retry_after_s and exc.value.retry_after_s >= 30
    hold.set()
    await asyncio.gather(*tasks)


async def test_an_idle_resident_is_unloaded_after_its_ttl_and_the_default_returns(sched):
    s = sched()
    from dataclasses import replace
    from types import MappingProxyType

    specs = dict(s.state.specs)
    specs["tts"] = replace(specs["tts"], ttl_s=0.5, swap_in_s=600)  # rent-or-buy alone would wait far longer
    s.state = replace(s.state, specs=MappingProxyType(specs))
    await s.start()
    async with s.lease("tts", job_id="speak", context=CTX, est_seconds=1):
        pass
    await until(lambda: phase(s, "tts") == "stopped", timeout=10)
    await until(lambda: phase(s, "sglang") == "ready")


async def test_a_schedule_due_in_two_minutes_starts_with_under_a_second_of_wait(sched):
    shift = [0.0]
    s = sched()
    s.clock = lambda: time.time() + shift[0]
    await s.start()
    await until(lambda: phase(s, "sglang") == "ready")
    due = s.clock() + 120
    s.expect([Expected("tts", due, "morning podcast")])
    await asyncio.sleep(0.5)  # the observation window of a negative claim: no preload two minutes ahead
    assert phase(s, "tts") == "stopped"  # not yet: two minutes ahead is beyond the preload lead
    shift[0] += 110  # ten seconds before the fire time (the lead is the swap plus the margin)
    s._kick()
    await until(lambda: phase(s, "tts") == "ready", timeout=15)
    with contextlib.suppress(Exception):
        await asyncio.sleep(max(0.0, due - s.clock()))  # the wall clock is the condition: the fire time
    t0 = time.monotonic()
    async with s.lease("tts", job_id="podcast", context=CTX, job_class="scheduled", est_seconds=1):
        waited = time.monotonic() - t0
    assert waited < 1.0
