"""A scheduled run waits in the resident-model scheduler's queue as class `scheduled` (real stand-in server)."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from hub.config import load_config
from hub.context import Context
from hub.core import Hub
from hub.jobs import SkillRun
from hub.registry import SkillRegistry, skill
from hub.sim.serve import free_port
from tests.test_cron import runs_of
from tests.test_gpu_runtime import sim_command
from tests.waiting import wait_until

GATE: dict[str, asyncio.Event] = {}


class Empty(BaseModel):
    pass


@skill(name="voice_hold", description="Holds the TTS server until the test releases it", params=Empty,
       result=Empty, resident="tts", est_seconds=5, timeout_s=30)
async def voice_hold(run: SkillRun, params: Empty) -> Empty:
    await GATE.setdefault("tts", asyncio.Event()).wait()
    return Empty()


@skill(name="voice_note", description="A short TTS job", params=Empty, result=Empty, resident="tts",
       est_seconds=1, timeout_s=30)
async def voice_note(run: SkillRun, params: Empty) -> Empty:
    return Empty()


def tts_config(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    residents = {"pool": {"memory_gb": 100, "reserve_gb": 0}, "memory_guard": {"enabled": False},
                 "monitor_interval_s": 0.5,
                 "tts": {"kind": "tts", "memory_gb": 20, "base_url": url, "default": True,
                         "driver": {"type": "process", "command": sim_command("tts", port, delay=0.2)},
                         "ready": {"url": url + "/v1/models"}, "start_timeout_s": 20, "swap_seconds": 1,
                         "concurrency": 1}}
    return load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}, "residents": residents},
                       environ={})


async def start_hub(config) -> Hub:
    registry = SkillRegistry()
    registry.register(voice_hold)
    registry.register(voice_note)
    return await Hub.start(config, skills=registry, components=("hub.gpu.component", "hub.cron.component"))


@pytest.mark.slow  # starts processes: outside the fast tier
async def test_a_scheduled_run_queues_for_the_gpu_as_scheduled_and_its_next_slot_is_skipped(tmp_path):
    GATE.clear()
    hub = await start_hub(tts_config(tmp_path))
    drivers = hub.gpu.drivers
    try:
        holder = await hub.start_skill("voice_hold", {}, Context.new("cli"))
        await wait_until(lambda: holder.status == "running", timeout=20, what="the holder to run")
        await hub.cron.add("voice", "every 0.5s", "voice_note", {})

        async def queued():
            return [q for q in hub.gpu.snapshot().queue if q.job_class == "scheduled"]

        [entry] = await wait_until(queued, what="the run to queue for the GPU")
        job = await hub.jobs.get(entry.job_id)
        assert (job.skill, job.job_class, job.context.origin) == ("voice_note", "scheduled", "cron")

        async def skipped():
            runs = await runs_of(hub, "voice")
            return runs if any(r.status == "skipped" for r in runs) else None

        runs = await wait_until(skipped, what="the next slot to be skipped")
        assert runs[0].job_id == entry.job_id and runs[0].status == "queued"
        assert f"the previous run (job {entry.job_id}) is still queued" in runs[1].error
        assert len([q for q in hub.gpu.snapshot().queue if q.job_class == "scheduled"]) == 1

        GATE["tts"].set()

        async def succeeded():
            return (await runs_of(hub, "voice"))[0].status == "succeeded"

        await wait_until(succeeded, timeout=10, what="the run to succeed")
        await hub.cron.pause("voice")
    finally:
        GATE.setdefault("tts", asyncio.Event()).set()
        await hub.stop()
        for driver in drivers.values():
            await driver.stop(5)


@pytest.mark.slow  # starts processes: outside the fast tier
async def test_a_scheduled_run_waiting_for_the_gpu_across_a_restart_still_blocks_a_second_instance(tmp_path):
    GATE.clear()
    config = tts_config(tmp_path)
    hub = await start_hub(config)
    drivers = hub.gpu.drivers
    try:
        holder = await hub.start_skill("voice_hold", {}, Context.new("cli"))
        await wait_until(lambda: holder.status == "running", timeout=20, what="the holder to run")
        await hub.cron.add("hold", "every 0.5s", "voice_hold", {})
        [entry] = await wait_until(lambda: [q for q in hub.gpu.snapshot().queue if q.job_class == "scheduled"],
                                   what="the scheduled run in the GPU queue")
        await hub.stop()  # the scheduled job never got the GPU: it stays queued in SQLite

        hub = await start_hub(config)  # it resumes, gets the GPU and runs (until the gate opens)

        async def skipped():
            runs = await runs_of(hub, "hold")
            return runs if any(r.status == "skipped" for r in runs) else None

        runs = await wait_until(skipped, timeout=20, what="the next slot to be skipped")
        assert runs[0].job_id == entry.job_id and runs[0].status == "running"
        assert f"the previous run (job {entry.job_id}) is still running" in runs[1].error
        assert len([j for j in await hub.jobs.list() if j.job_class == "scheduled"]) == 1
        await hub.cron.pause("hold")
        GATE["tts"].set()

        async def succeeded():
            return (await runs_of(hub, "hold"))[0].status == "succeeded"

        await wait_until(succeeded, timeout=10, what="the run to succeed")
    finally:
        GATE.setdefault("tts", asyncio.Event()).set()
        await hub.stop()
        for driver in drivers.values():
            await driver.stop(5)


async def test_the_gpu_scheduler_sees_each_enabled_schedules_next_fire_time_and_resident(tmp_path):
    from hub.gpu.component import expected_arrivals

    hub = await start_hub(tts_config(tmp_path))
    drivers = hub.gpu.drivers
    try:
        await hub.cron.add("hourly-voice", "every 1h", "voice_note", {})
        await hub.cron.add("paused-voice", "every 2h", "voice_note", {})
        await hub.cron.pause("paused-voice")
        [e] = await expected_arrivals(hub)
        assert (e.resident, e.label) == ("tts", "hourly-voice") and e.at > 0
        hub.gpu.expect([e])
        assert hub.gpu.state.expected == (e,)  # the policy's state holds it (what `decide` preloads for)
    finally:
        await hub.stop()
        for d in drivers.values():
            await d.stop(5)
