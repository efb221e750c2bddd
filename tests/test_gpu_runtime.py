"""The scheduler's shell with the process driver: real stand-in servers as child processes."""

from __future__ import annotations

import asyncio
import sys

import httpx
import pytest
from pydantic import BaseModel

from hub.config import load_config
from hub.context import Context
from hub.core import Hub
from hub.errors import SkillFailed
from hub.gpu.drivers import ProcessDriver
from hub.gpu.memory import MemoryGuard
from hub.gpu.model import PolicyParams, ResidentSpec
from hub.gpu.runtime import GpuUnavailable, ResidentRuntime, ResidentScheduler
from hub.jobs import SkillRun
from hub.registry import SkillRegistry, skill
from hub.sim.serve import free_port
from tests.waiting import wait_until


def sim_command(name: str, port: int, delay: float = 0.5, options: tuple[str, ...] = ()) -> list[str]:
    """`python -m hub.sim NAME` after `delay` seconds (a start delay like a model load)."""
    argv = ["hub.sim", name, "--port", str(port), *[x for o in options for x in ("--option", o)]]
    code = (f"import time, sys, runpy; time.sleep({delay}); sys.argv = {argv!r}; "
            "runpy.run_module('hub.sim', run_name='__main__', alter_sys=True)")
    return [sys.executable, "-c", code]


READY = {"sglang": "/health", "comfyui": "/system_stats", "tts": "/v1/models"}
KIND = {"sglang": "llm", "comfyui": "image", "tts": "tts"}


def process_residents_config(tmp_path, names: tuple[str, ...], **residents_opts):
    """Residents that are stand-in processes, 80 GB each in a 100 GB pool (so one at a time)."""
    ports = {n: free_port() for n in names}
    residents: dict = {"pool": {"memory_gb": 100, "reserve_gb": 0}, "memory_guard": {"enabled": False},
                       "monitor_interval_s": 0.5, **residents_opts}
    for name in names:
        url = f"http://127.0.0.1:{ports[name]}"
        residents[name] = {
            "kind": KIND[name], "memory_gb": 80, "base_url": url, "default": name == "sglang",
            "driver": {"type": "process", "command": sim_command(name, ports[name])},
            "ready": {"url": url + READY[name]}, "start_timeout_s": 20, "swap_seconds": 2,
        }
    return load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}, "residents": residents},
                       environ={})


async def start_gpu_hub(config, skills) -> Hub:
    """A hub with only the GPU component and the given skills."""
    registry = SkillRegistry()
    for one in skills:
        registry.register(one)
    return await Hub.start(config, skills=registry, components=("hub.gpu.component",))


def make_scheduler(tmp_path, commands=None, events=None, **params) -> ResidentScheduler:
    specs, runtimes, drivers = [], {}, {}
    for name in ("sglang", "comfyui", "tts"):
        port = free_port()
        specs.append(ResidentSpec(name, KIND[name], memory_gb=80, default=name == "sglang",
                                  concurrency=4 if name == "sglang" else 1, swap_in_s=2, swap_out_s=1))
        url = f"http://127.0.0.1:{port}"
        runtimes[name] = ResidentRuntime(base_url=url, ready_url=url + READY[name], start_timeout_s=20,
                                         stall_timeout_s=20, stop_timeout_s=5)
        cmd = (commands or {}).get(name) or sim_command(name, port)
        if callable(cmd):
            cmd = cmd(port)
        drivers[name] = ProcessDriver(name, cmd, state_dir=tmp_path / "residents")
    bus = None
    if events is not None:
        from hub.events import EventBus

        bus = EventBus()
        bus.listen("*", lambda e: events.append((e.type, e.data)))
    p = PolicyParams(memory_gb=100, reserve_gb=0, **params)
    return ResidentScheduler(specs, runtimes, drivers, params=p, bus=bus, monitor_interval_s=0.3,
                             probe_poll_s=0.1)


async def running(s: ResidentScheduler) -> list[str]:
    return [n for n, d in s.drivers.items() if await d.is_running()]


@pytest.fixture
async def sched(tmp_path):
    s = make_scheduler(tmp_path)
    yield s
    await s.close()
    for d in s.drivers.values():
        await d.stop(5)


CTX = Context.new("cli")


async def test_leases_swap_residents_one_at_a_time_and_the_default_comes_back(sched):
    await sched.start()
    seen = []
    for name in ("comfyui", "tts", "sglang", "comfyui"):
        async with sched.lease(name, job_id=f"j-{name}", context=CTX, est_seconds=1) as lease:
            seen.append((name, await running(sched)))
            async with httpx.AsyncClient() as c:
                assert (await c.get(sched.runtimes[name].ready_url)).status_code == 200
            assert lease.base_url == sched.runtimes[name].base_url
    assert seen == [("comfyui", ["comfyui"]), ("tts", ["tts"]), ("sglang", ["sglang"]),
                    ("comfyui", ["comfyui"])]
    # idle: rent-or-buy brings the default back after about one (learned) swap cost
    await wait_until(lambda: sched.snapshot().resident == "sglang" and sched.snapshot().state == "ready",
                     timeout=20, what="the default resident back and ready")
    assert await running(sched) == ["sglang"]
    snap = sched.snapshot()
    assert [s["resident"] for s in snap.swaps if s["phase"] == "in"][-1] == "sglang"
    assert sched.metrics()["swaps"] >= 5


async def test_concurrent_leases_are_batched_per_resident(sched):
    await sched.start()
    order: list[str] = []

    async def use(name, i):
        async with sched.lease(name, job_id=f"{name}-{i}", context=CTX, est_seconds=0.2):
            order.append(name)
            assert await running(sched) == [name]
            await asyncio.sleep(0.1)  # the lease's simulated work, so the later arrivals queue behind it

    names = ["comfyui", "tts", "comfyui", "tts", "comfyui"]
    tasks = []
    for i, n in enumerate(names):
        tasks.append(asyncio.create_task(use(n, i)))
        await asyncio.sleep(0.01)  # staggered arrivals: the order they come in is the input under test
    await asyncio.gather(*tasks)
    assert order in (["comfyui"] * 3 + ["tts"] * 2, ["tts"] * 2 + ["comfyui"] * 3)


async def test_snapshot_shows_the_queue_with_positions_and_etas(sched):
    await sched.start()
    gate = asyncio.Event()

    holding = asyncio.Event()

    async def hold():
        async with sched.lease("sglang", job_id="holder", context=CTX, est_seconds=5):
            holding.set()
            await gate.wait()

    async def want_image():
        async with sched.lease("comfyui", job_id="waiter", context=CTX, job_class="skill", label="hero_image"):
            pass

    t1 = asyncio.create_task(hold())
    await asyncio.wait_for(holding.wait(), 30)  # the default is loading at start; the holder gets it
    t2 = asyncio.create_task(want_image())
    await wait_until(lambda: sched.snapshot().queue, what="the waiter in the queue")
    snap = sched.snapshot()
    assert [q.job_id for q in snap.queue] == ["waiter"]
    assert snap.queue[0].position == 1 and snap.queue[0].eta_s > 0 and snap.queue[0].label == "hero_image"
    gate.set()
    await asyncio.gather(t1, t2)


async def test_cancel_while_queued_leaves_no_trace(sched):
    await sched.start()
    gate = asyncio.Event()

    holding = asyncio.Event()

    async def hold():
        async with sched.lease("sglang", job_id="holder", context=CTX, est_seconds=30):
            holding.set()
            await gate.wait()

    async def queued():
        async with sched.lease("tts", job_id="q", context=CTX):
            pass

    t1 = asyncio.create_task(hold())
    await asyncio.wait_for(holding.wait(), 30)
    t2 = asyncio.create_task(queued())
    await wait_until(lambda: sched.state.queue, what="the lease request in the queue")
    t2.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t2
    assert not sched.state.queue
    gate.set()
    await t1


async def test_a_server_that_never_gets_ready_fails_its_jobs_and_the_default_returns(tmp_path):
    never = {"tts": lambda port: [sys.executable, "-c", "import time; time.sleep(600)"]}
    events: list = []
    s = make_scheduler(tmp_path, never, events)
    s.runtimes["tts"] = ResidentRuntime(base_url="http://127.0.0.1:9", ready_url=s.runtimes["tts"].ready_url,
                                        start_timeout_s=30, stall_timeout_s=1.5, stop_timeout_s=2)
    try:
        await s.start()
        with pytest.raises(GpuUnavailable, match=r"resident tts failed to start: tts stalled: no log output"):
            async with s.lease("tts", job_id="speak", context=CTX):
                pass
        async def default_back() -> bool:
            return await running(s) == ["sglang"] and s.snapshot().state == "ready"

        await wait_until(default_back, timeout=20, what="the default resident back and ready")
        assert ("gpu_start_failed", ) == tuple(e[0] for e in events if e[0] == "gpu_start_failed")[:1]
    finally:
        await s.close()
        for d in s.drivers.values():
            await d.stop(5)


async def test_a_server_killed_mid_job_fails_that_lease_with_a_notice_and_recovers(tmp_path):
    events: list = []
    s = make_scheduler(tmp_path, events=events)
    try:
        await s.start()
        with pytest.raises(httpx.HTTPError):
            async with s.lease("comfyui", job_id="img", context=CTX, est_seconds=2) as lease:
                drv = s.drivers["comfyui"]
                await drv.stop(0.1)  # the server dies under the job
                await wait_until(lambda: [t for t, _ in events if t == "gpu_lease_revoked"], what="the lease revoked")
                async with httpx.AsyncClient() as c:
                    await c.get(lease.base_url + "/system_stats")
        revoked = [d for t, d in events if t == "gpu_lease_revoked"]
        assert revoked and revoked[0]["job_id"] == "img" and "stopped unexpectedly" in revoked[0]["error"]
        async with s.lease("comfyui", job_id="img2", context=CTX) as lease:  # recovered: started again
            async with httpx.AsyncClient() as c:
                assert (await c.get(lease.base_url + "/system_stats")).status_code == 200
    finally:
        await s.close()
        for d in s.drivers.values():
            await d.stop(5)


async def test_a_resident_that_died_between_health_checks_is_never_handed_a_lease(tmp_path):
    events: list = []
    s = make_scheduler(tmp_path, events=events)
    s.monitor_interval_s = 3600.0  # the monitor will not notice: the dispatch must
    try:
        await s.start()
        async with s.lease("comfyui", job_id="img1", context=CTX):
            pass
        await s.drivers["comfyui"].stop(0.1)  # dies while idle, between health checks
        async with s.lease("comfyui", job_id="img2", context=CTX) as lease:
            async with httpx.AsyncClient() as c:  # a live server, started again for this lease
                assert (await c.get(lease.base_url + "/system_stats")).status_code == 200
        crashed = [d for t, d in events if t == "gpu_resident_crashed"]
        assert crashed and "found at dispatch" in crashed[0]["error"]
        assert [d["resident"] for t, d in events if t == "gpu_ready"].count("comfyui") == 2
    finally:
        await s.close()
        for d in s.drivers.values():
            await d.stop(5)


async def test_a_lease_granted_past_its_bound_is_reported(tmp_path):
    events: list = []
    s = make_scheduler(tmp_path, events=events, max_wait_s={"interactive": 0.05, "skill": 0.05, "scheduled": 0.05})
    try:
        await s.start()
        async with s.lease("tts", job_id="late", context=CTX, job_class="skill"):  # needs a swap: seconds
            pass
    finally:
        await s.close()
        for d in s.drivers.values():
            await d.stop(5)
    (late,) = [d for t, d in events if t == "gpu_wait_exceeded" and d["job_id"] == "late"]
    assert late["job_class"] == "skill" and late["bound_s"] == 0.05 and late["waited_s"] > 0.05


class FailingStore:
    """A store whose writes fail (a full disk): the scheduler must go on and say so."""

    async def kv_get(self, key, default=None):
        return default

    async def kv_set(self, key, value):
        raise OSError("database or disk is full")


async def test_failures_to_save_scheduler_state_are_logged_not_swallowed(tmp_path, caplog):
    s = make_scheduler(tmp_path)
    s.store = FailingStore()
    try:
        await s.start()
        async with s.lease("tts", job_id="t", context=CTX):
            pass
    finally:
        await s.close()
        for d in s.drivers.values():
            await d.stop(5)
    text = caplog.text
    assert "cannot save the learned swap costs (gpu.swap_costs): database or disk is full" in text
    assert "cannot save the scheduler snapshot (gpu.snapshot)" in text


async def test_restart_adopts_the_running_resident_without_restarting_it(tmp_path):
    s = make_scheduler(tmp_path)
    await s.start()
    async with s.lease("tts", job_id="a", context=CTX):
        pass
    pid = s.drivers["tts"]._pid()
    await s.close()  # the hub stops; the resident keeps running
    s2 = make_scheduler(tmp_path)
    s2.runtimes = s.runtimes
    s2.drivers = {n: ProcessDriver(n, d.command, state_dir=tmp_path / "residents") for n, d in s.drivers.items()}
    try:
        await s2.start()
        assert s2.snapshot().resident == "tts" and s2.snapshot().state == "ready"
        async with s2.lease("tts", job_id="b", context=CTX):
            assert s2.drivers["tts"]._pid() == pid
    finally:
        await s2.close()
        for d in s2.drivers.values():
            await d.stop(5)


async def test_memory_guard_waits_for_memory_to_come_back(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 16777216 kB\nMemAvailable:    1048576 kB\n")  # 16 GB, 1 GB free
    guard = MemoryGuard(meminfo=str(meminfo), timeout_s=10, poll_s=0.05)
    task = asyncio.create_task(guard.wait_for(4))
    await asyncio.sleep(0.3)  # the observation window of a negative claim: it keeps waiting while memory is short
    assert not task.done()
    meminfo.write_text("MemTotal: 16777216 kB\nMemAvailable:    8388608 kB\n")
    ok, waited = await task
    assert ok and waited >= 0.3
    short = MemoryGuard(meminfo=str(meminfo), timeout_s=0.2, poll_s=0.05)
    assert (await short.wait_for(12))[0] is False  # never came back within the timeout
    assert await short.wait_for(64) == (True, 0.0)  # more than this machine has: figures for another box


class Empty(BaseModel):
    pass


class Said(BaseModel):
    resident: str
    status: int


@skill(name="speak_test", description="Uses the TTS resident", params=Empty, result=Said, resident="tts",
       est_seconds=1)
async def speak_test(run: SkillRun, params: Empty) -> Said:
    lease_url = run.hub.gpu.snapshot().residents["tts"]
    async with httpx.AsyncClient() as c:
        r = await c.get(f"{run.hub.config.residents.servers['tts'].base_url}/v1/models")
    return Said(resident=str(lease_url["phase"]), status=r.status_code)


async def test_hub_run_skill_leases_its_resident_through_the_scheduler(tmp_path):
    hub = await start_gpu_hub(process_residents_config(tmp_path, ("sglang", "tts")), [speak_test])
    try:
        assert isinstance(hub.gpu, ResidentScheduler)
        result = await hub.run_skill("speak_test", {}, Context.new("cli"))
        assert result.resident == "ready" and result.status == 200
        assert await running(hub.gpu) == ["tts"]
        events = await hub.jobs.events((await hub.jobs.list(1))[0].id)
        assert [e["type"] for e in events if e["type"].startswith("lease")] == ["lease_wait", "lease_granted"]
        status = await hub.status()
        assert status["gpu"]["resident"] == "tts"
        assert (await hub.store.kv_get("gpu.snapshot"))["residents"]["tts"]["phase"] == "ready"
    finally:
        for d in hub.gpu.drivers.values():
            await d.stop(5)
        await hub.stop()


def test_unknown_resident_is_refused_clearly(tmp_path):
    s = make_scheduler(tmp_path)

    async def go():
        async with s.lease("nope", job_id="x", context=CTX):
            pass

    with pytest.raises(GpuUnavailable, match="unknown resident 'nope'"):
        asyncio.run(go())
    assert SkillFailed  # imported for symmetry with the hub path


async def test_http_release_puts_vllm_to_sleep_and_checks_the_first_answer_after_waking():
    from hub.gpu.drivers import DriverError, HttpReleaseDriver
    from hub.sim import tts
    from hub.sim.serve import serve_app

    async with serve_app(tts.create_app(engine="tone")) as url:
        drv = HttpReleaseDriver("tts", url, "vllm", timeout=10)
        await drv.stop(5)
        async with httpx.AsyncClient() as c:
            assert (await c.get(url + "/is_sleeping")).json()["is_sleeping"] is True
            assert (await c.post(url + "/v1/audio/speech", json={"input": "hi"})).status_code == 503
        await drv.start()  # wake_up, then a known answer: real audio comes back
        assert "POST /wake_up -> 200" in await drv.tail()
        await drv.stop(5)
        bad = HttpReleaseDriver("tts", url, "sglang", timeout=10)
        with pytest.raises(DriverError, match="release_memory_occupation answered 404"):
            await bad.stop(5)


class NapParams(BaseModel):
    seconds: float = 0.0


@skill(name="llm_nap", description="Holds the LLM", params=NapParams, result=Empty, resident="sglang",
       est_seconds=60)
async def llm_nap(run: SkillRun, params: NapParams) -> Empty:
    await asyncio.sleep(params.seconds)  # the skill's simulated work: it holds the LLM resident
    return Empty()


async def test_jobs_waiting_for_the_gpu_survive_a_hub_restart_and_run_after_it(tmp_path):
    config = process_residents_config(tmp_path, ("sglang", "tts"), min_residency_s=600)
    hub = await start_gpu_hub(config, [speak_test, llm_nap])
    drivers = hub.gpu.drivers
    try:
        busy = await hub.start_skill("llm_nap", {"seconds": 60}, Context.new("cli"))
        await wait_until(lambda: busy.status == "running", what="the LLM holder to run")
        waiting = await hub.start_skill("speak_test", {}, Context.new("cli"))
        cancelled = await hub.start_skill("speak_test", {}, Context.new("cli"))
        await wait_until(lambda: [q.job_id for q in hub.gpu.snapshot().queue] == [waiting.id, cancelled.id],
                         what="both jobs queued for the GPU in order")
        await hub.jobs.cancel(cancelled.id)  # cancel works for a job queued for the GPU
        await wait_until(lambda: [q.job_id for q in hub.gpu.snapshot().queue] == [waiting.id],
                         what="the cancelled job gone from the GPU queue")
    finally:
        await hub.stop()
    assert (await _job_status(config, busy.id)) == "failed"  # it was running: failed with a notice
    assert (await _job_status(config, waiting.id)) == "queued"  # it never got the GPU: still queued
    hub = await start_gpu_hub(config, [speak_test, llm_nap])
    try:
        async def succeeded() -> bool:
            return (await hub.jobs.get(waiting.id)).status == "succeeded"

        await wait_until(succeeded, timeout=20, what="the queued job to run after the restart")
        assert (await hub.jobs.get(cancelled.id)).status == "cancelled"
    finally:
        await hub.stop()
        for d in drivers.values():
            await d.stop(5)


async def _job_status(config, job_id: str) -> str:
    from hub.store import Store

    store = await Store.open(config.storage.db_path)
    try:
        rows = await store.db.execute_fetchall("SELECT status FROM jobs WHERE id = ?", (job_id,))
        return rows[0][0]
    finally:
        await store.close()


async def test_a_hung_lease_is_revoked_after_the_busy_timeout_so_a_waiting_swap_proceeds(tmp_path):
    events: list = []
    s = make_scheduler(tmp_path, events=events, busy_timeout_s=1.0, min_residency_s=0)
    try:
        await s.start()
        stuck = asyncio.Event()

        async def hang():
            async with s.lease("comfyui", job_id="stuck", context=CTX, est_seconds=0.1):
                stuck.set()
                await asyncio.sleep(3600)  # the behaviour under test: a request to a hung server that never returns

        t = asyncio.create_task(hang())
        await stuck.wait()
        async with s.lease("tts", job_id="next", context=CTX) as lease:  # gets its swap after ~1 s
            assert lease.resident == "tts" and await running(s) == ["tts"]
        (notice,) = [d for k, d in events if k == "gpu_lease_revoked"]
        assert notice["job_id"] == "stuck" and "busy past its timeout" in notice["error"]
        t.cancel()
    finally:
        await s.close()
        for d in s.drivers.values():
            await d.stop(5)


@skill(name="podcast_test", description="A pipeline: script on the LLM, then speech", params=Empty,
       result=Empty)
async def podcast_test(run: SkillRun, params: Empty) -> Empty:
    async with run.use_resident("sglang", est_seconds=1, then="tts"):
        await asyncio.sleep(0.5)  # the skill's simulated work: writing the script
    await asyncio.sleep(1.0)  # the skill's simulated work: splitting the script into sentences, between the two steps
    async with run.use_resident("tts", est_seconds=1):
        pass
    return Empty()


@skill(name="image_test", description="Uses ComfyUI", params=Empty, result=Empty, resident="comfyui",
       est_seconds=1)
async def image_test(run: SkillRun, params: Empty) -> Empty:
    return Empty()


async def test_a_pipeline_keeps_its_steps_adjacent_through_the_hub(tmp_path):
    config = process_residents_config(tmp_path, ("sglang", "comfyui", "tts"), min_residency_s=0)
    hub = await start_gpu_hub(config, [podcast_test, image_test])
    drivers = hub.gpu.drivers
    started: list[str] = []
    hub.bus.listen("gpu_started", lambda e: started.append(e.data["resident"]))
    try:
        podcast = await hub.start_skill("podcast_test", {}, Context.new("cli"))
        await wait_until(lambda: started, what="the pipeline's first resident to start")
        image = await hub.start_skill("image_test", {}, Context.new("cli"))  # younger than the pipeline
        await podcast.wait(30)
        await image.wait(30)
        assert started == ["sglang", "tts", "comfyui"]
    finally:
        await hub.stop()
        for d in drivers.values():
            await d.stop(5)


async def test_a_lease_with_checkpoints_yields_to_a_chat_and_resumes_without_redoing_a_chunk(tmp_path):
    """The yield rule through the real shell and stand-in servers: a long TTS lease that calls
    `checkpoint()` after every chunk gives the GPU to an interactive lease that would otherwise miss
    its bound, is granted again afterwards and renders every chunk exactly once."""
    events: list = []
    s = make_scheduler(tmp_path, events=events, min_slice_s=0.3, urgency_margin_s=1.0, conversation_s=0.0,
                       max_wait_s={"interactive": 8.0, "skill": 600.0, "scheduled": 600.0})
    await s.start()
    rendered: list[int] = []
    chat_at: list[int] = []
    try:
        async def podcast():
            async with s.lease("tts", job_id="pod", context=CTX, est_seconds=8, checkpoint_s=0.2) as lease:
                for i in range(40):
                    await asyncio.sleep(0.2)  # one speech chunk
                    rendered.append(i)
                    assert await running(s) == ["tts"]  # never rendered while another server holds the GPU
                    if i < 39:
                        await lease.checkpoint((i + 1) / 40)

        pod = asyncio.create_task(podcast())
        await wait_until(lambda: rendered, what="the first speech chunk")
        async with s.lease("comfyui", job_id="chat", context=CTX, job_class="interactive", est_seconds=0.5):
            chat_at.append(len(rendered))
            assert await running(s) == ["comfyui"]
        await asyncio.wait_for(pod, 60)
    finally:
        await s.close()
        for d in s.drivers.values():
            await d.stop(5)
    assert rendered == list(range(40))  # every chunk once, in order
    assert 0 < chat_at[0] < 40  # the chat ran in the middle of the episode
    kinds = [k for k, _ in events]
    assert "gpu_yield_asked" in kinds and "gpu_yielded" in kinds
    finished = [d for k, d in events if k == "gpu_finished" and d["job_id"] == "pod"]
    assert finished == [{"job_id": "pod", "resident": "tts", "ok": True}]
    waited = [d for k, d in events if k == "gpu_wait_exceeded"]
    assert not waited


async def test_a_lease_without_checkpoints_is_never_asked_to_yield(sched):
    await sched.start()
    async with sched.lease("tts", job_id="plain", context=CTX, est_seconds=1) as lease:
        assert lease.yield_point is None
        await lease.checkpoint(0.5)  # a no-op for a lease that declared no checkpoints
