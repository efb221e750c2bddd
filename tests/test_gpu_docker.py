"""The scheduler on the real dockerd: three stand-in residents as real containers (host Python
serving the `hub/sim/` servers after a short start delay)."""

from __future__ import annotations

import asyncio
import sys

import httpx
import pytest

from hub.config import load_config
from hub.context import Context
from hub.core import Hub
from hub.events import EventBus
from hub.gpu.runtime import GpuUnavailable, ResidentScheduler
from hub.sim.serve import free_port
from tests.testbed.dockerd import REPO_ROOT, TEST_LABEL, host_python_mounts
from tests.waiting import wait_until

READY = {"sglang": "/health", "comfyui": "/system_stats", "tts": "/v1/models"}
KIND = {"sglang": "llm", "comfyui": "image", "tts": "tts"}
CTX = Context.new("cli")


def create_python(dockerd, name: str, args: list[str], labels: dict[str, str] | None = None):
    """Create (not start) a host-Python container, as compose would before the hub starts it."""
    return dockerd.client.containers.create(
        dockerd.image, [sys.executable, *args], name=name,
        environment={"PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1", "HOME": "/tmp"},
        labels={TEST_LABEL: "1", **(labels or {})}, volumes=host_python_mounts(), network_mode="host",
        init=True, working_dir=str(REPO_ROOT))


def stand_in(name: str, port: int, delay: float = 1.0) -> list[str]:
    argv = ["hub.sim", name, "--port", str(port)]
    if name == "sglang":
        argv += ["--option", f"load_seconds={delay}"]  # /health is 503 while "loading"
        delay = 0.0
    if name == "tts":
        argv += ["--option", "engine=tone"]  # no espeak-ng data inside the busybox container
    code = (f"import time, sys, runpy; print('loading', flush=True); time.sleep({delay}); sys.argv = {argv!r}; "
            "runpy.run_module('hub.sim', run_name='__main__', alter_sys=True)")
    return ["-c", code]


def residents_config(dockerd, *, broken: str | None = None, use_label: str | None = None) -> dict:
    """Three residents; `broken` never becomes ready (silent); `use_label` is found by compose label."""
    cfg: dict = {"pool": {"memory_gb": 100, "reserve_gb": 0}, "memory_guard": {"enabled": False},
                 "monitor_interval_s": 0.3, "min_residency_s": 0}
    for name in ("sglang", "comfyui", "tts"):
        port = free_port()
        cname = f"sovhub-test-{name}-{port}"
        args = ["-c", "import time; time.sleep(600)"] if name == broken else stand_in(name, port)
        labels = {"sovhub.resident": name}  # as compose labels the residents' containers
        if name == use_label:
            labels["com.docker.compose.service"] = cname
        create_python(dockerd, cname, args, labels)
        driver = {"type": "docker", "docker_host": dockerd.base_url}
        driver.update({"compose_service": cname} if name == use_label else {"container": cname})
        url = f"http://127.0.0.1:{port}"
        cfg[name] = {"kind": KIND[name], "memory_gb": 80, "base_url": url, "default": name == "sglang",
                     "driver": driver, "ready": {"url": url + READY[name]}, "start_timeout_s": 30,
                     "stall_timeout_s": 2 if name == broken else 20, "stop_timeout_s": 3, "swap_seconds": 2}
    return cfg


def scheduler(tmp_path, cfg: dict, events: list | None = None) -> ResidentScheduler:
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}, "residents": cfg}, environ={})
    bus = EventBus()
    if events is not None:
        bus.listen("*", lambda e: events.append((e.type, e.data)))
    s = ResidentScheduler.from_config(config.residents, state_dir=tmp_path / "residents", bus=bus)
    s.probe_poll_s = 0.1
    return s


def running_containers(dockerd) -> list[str]:
    return sorted(c.name.split("-")[2] for c in dockerd.client.containers.list(
        filters={"label": f"{TEST_LABEL}=1", "name": "sovhub-test-"}))


async def wait_for(predicate, timeout: float = 30.0) -> None:
    """`wait_until` with room for a container to start on a loaded machine."""
    await wait_until(predicate, timeout=timeout, interval=0.1, what="the residents to reach the expected state")


async def test_only_one_resident_container_runs_at_a_time(docker_cleanup, tmp_path):
    dockerd = docker_cleanup
    s = scheduler(tmp_path, residents_config(dockerd, use_label="tts"))
    await s.start()
    seen = []
    try:
        async def use(name: str, i: int) -> None:
            async with s.lease(name, job_id=f"{name}-{i}", context=CTX, est_seconds=0.5) as lease:
                seen.append((name, await asyncio.to_thread(running_containers, dockerd)))
                async with httpx.AsyncClient() as c:
                    assert (await c.get(lease.base_url + READY[name])).status_code == 200

        await use("comfyui", 0)
        await use("tts", 1)  # found by its compose service label
        await asyncio.gather(*(use(n, i) for i, n in enumerate(["sglang", "comfyui", "sglang", "tts"], 2)))
        assert all(running == [name] for name, running in seen), seen
        assert [n for n, _ in seen][:2] == ["comfyui", "tts"]
        assert s.metrics()["swaps"] >= 4
    finally:
        await s.close()


async def test_a_hub_restart_adopts_the_running_resident_without_restarting_it(docker_cleanup, tmp_path):
    dockerd = docker_cleanup
    cfg = residents_config(dockerd)
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}, "residents": cfg}, environ={})
    hub = await Hub.start(config, components=("hub.gpu.component",), skills=_no_skills())
    try:
        await wait_for(lambda: _ready(hub, "sglang"))  # an empty GPU loads the default at once
    finally:
        await hub.stop()
    container = dockerd.client.containers.get(cfg["sglang"]["driver"]["container"])
    started = container.attrs["State"]["StartedAt"]
    hub = await Hub.start(config, components=("hub.gpu.component",), skills=_no_skills())
    try:
        snap = hub.gpu.snapshot()
        assert snap.resident == "sglang" and snap.state == "ready"  # adopted during start-up
        assert not [s for s in snap.swaps if s["phase"] == "in"]
        container.reload()
        assert container.attrs["State"]["StartedAt"] == started and container.status == "running"
    finally:
        await hub.stop()


def _no_skills():
    from hub.registry import SkillRegistry

    return SkillRegistry()


async def _ready(hub, name: str) -> bool:
    snap = hub.gpu.snapshot()
    return snap.resident == name and snap.state == "ready"


async def test_a_container_that_never_becomes_healthy_fails_its_jobs_and_the_default_returns(
        docker_cleanup, tmp_path):
    dockerd = docker_cleanup
    events: list = []
    s = scheduler(tmp_path, residents_config(dockerd, broken="comfyui"), events)
    await s.start()
    try:
        with pytest.raises(GpuUnavailable) as err:
            async with s.lease("comfyui", job_id="hero", context=CTX):
                pass
        assert "resident comfyui failed to start: comfyui stalled: no log output for 2 s" in str(err.value)
        await wait_for(lambda: _sched_ready(s, "sglang"))
        assert await asyncio.to_thread(running_containers, dockerd) == ["sglang"]
        assert [d["resident"] for t, d in events if t == "gpu_start_failed"] == ["comfyui"]
    finally:
        await s.close()


async def _sched_ready(s: ResidentScheduler, name: str) -> bool:
    snap = s.snapshot()
    return snap.resident == name and snap.state == "ready"


async def test_a_container_killed_mid_job_fails_that_job_with_a_notice_and_the_scheduler_recovers(
        docker_cleanup, tmp_path):
    dockerd = docker_cleanup
    events: list = []
    cfg = residents_config(dockerd)
    s = scheduler(tmp_path, cfg, events)
    await s.start()
    try:
        with pytest.raises(httpx.HTTPError):
            async with s.lease("tts", job_id="podcast", context=CTX, est_seconds=2) as lease:
                await asyncio.to_thread(dockerd.client.containers.get(cfg["tts"]["driver"]["container"]).kill)
                await wait_for(lambda: _revoked(events))
                async with httpx.AsyncClient() as c:
                    await c.get(lease.base_url + "/v1/models")
        (notice,) = [d for t, d in events if t == "gpu_lease_revoked"]
        assert notice["job_id"] == "podcast" and "tts stopped unexpectedly" in notice["error"]
        async with s.lease("tts", job_id="podcast-again", context=CTX) as lease:
            async with httpx.AsyncClient() as c:
                assert (await c.get(lease.base_url + "/v1/models")).status_code == 200
    finally:
        await s.close()


async def _revoked(events) -> bool:
    return any(t == "gpu_lease_revoked" for t, _ in events)
