"""The docker driver adopts only containers labelled for sovhub; a Docker that is down is named as such."""

from __future__ import annotations

import asyncio

import pytest

from hub.context import Context
from hub.gpu.drivers.base import DriverError
from hub.gpu.drivers.docker import DockerDriver
from hub.gpu.runtime import GpuUnavailable
from hub.sim.serve import free_port
from tests.test_gpu_docker import create_python, residents_config, scheduler, stand_in

CTX = Context.new("cli")


async def test_a_foreign_container_with_the_configured_name_is_never_started_waited_on_or_stopped(
        docker_cleanup, tmp_path):
    dockerd = docker_cleanup
    cfg = residents_config(dockerd)
    # Someone's own service holds the name configured for comfyui: running, and not labelled for sovhub.
    port = free_port()
    name = f"sovhub-test-foreign-{port}"
    foreign = await asyncio.to_thread(create_python, dockerd, name, stand_in("comfyui", port), None)
    await asyncio.to_thread(foreign.start)
    foreign.reload()
    started = foreign.attrs["State"]["StartedAt"]
    cfg["comfyui"]["driver"]["container"] = name
    s = scheduler(tmp_path, cfg)
    await s.start()
    try:
        with pytest.raises(GpuUnavailable, match=r"was not created for this resident \(without the label "
                                                 r"sovhub.resident=comfyui\); sovhub will not start, wait on or "
                                                 r"stop it"):
            async with s.lease("comfyui", job_id="hero", context=CTX):
                pass
        foreign.reload()
        assert foreign.status == "running" and foreign.attrs["State"]["StartedAt"] == started
        driver = DockerDriver("comfyui", container=name, docker_host=dockerd.base_url)
        with pytest.raises(DriverError, match="was not created for this resident"):
            await driver.stop(1)
        foreign.reload()
        assert foreign.status == "running"
    finally:
        await s.close()


async def test_a_container_labelled_for_another_resident_is_refused_too(docker_cleanup):
    dockerd = docker_cleanup
    name = f"sovhub-test-other-{free_port()}"
    await asyncio.to_thread(create_python, dockerd, name, ["-c", "pass"], {"sovhub.resident": "tts"})
    driver = DockerDriver("comfyui", container=name, docker_host=dockerd.base_url)
    with pytest.raises(DriverError, match=r"labelled sovhub\.resident=tts"):
        await driver.start()


async def test_docker_down_is_said_plainly_not_as_a_raw_connection_error():
    driver = DockerDriver("sglang", docker_host=f"tcp://127.0.0.1:{free_port()}")
    with pytest.raises(DriverError) as info:
        await driver.start()
    assert str(info.value) == (f"sglang: Docker is not reachable at {driver.docker_host}: Connection refused "
                               "(errno 111); is the Docker daemon (or its socket proxy) running?")


def test_every_docker_resident_of_the_gb10_profile_is_labelled_for_sovhub_in_compose():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    services = yaml.safe_load((root / "compose" / "compose.yaml").read_text())["services"]
    residents = yaml.safe_load((root / "config" / "hub.gb10.yaml").read_text())["residents"]
    docker = {name: r["driver"] for name, r in residents.items()
              if isinstance(r, dict) and (r.get("driver") or {}).get("type") == "docker"}
    assert docker
    for name, driver in docker.items():
        labels = services[driver["compose_service"]].get("labels") or {}
        assert labels.get("sovhub.resident") == name, (name, labels)


def test_docker_down_in_the_ops_skills_is_said_plainly_too():
    from hub.errors import BackendDown
    from skills.ops import dockerctl

    url = f"tcp://127.0.0.1:{free_port()}"
    for call in (lambda: dockerctl.restart(url, "sovhub-x", 1), lambda: dockerctl.inspect(url, "sovhub-x", 5)):
        with pytest.raises(BackendDown) as info:
            call()
        assert str(info.value) == (f"Docker is not reachable at {url}: Connection refused (errno 111); is the Docker "
                                   "daemon (or its socket proxy) running?")
