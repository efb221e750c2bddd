"""The operator's GPU controls with the docker driver (the private test dockerd): load, a refused
unload, pin, and the container's log as the resident's live log."""

from __future__ import annotations

import asyncio

import pytest

from tests.test_gpu_docker import residents_config, running_containers, scheduler, wait_for

pytestmark = pytest.mark.docker


async def test_controls_and_logs_with_the_docker_driver(docker_cleanup, tmp_path):
    dockerd = docker_cleanup
    s = scheduler(tmp_path, residents_config(dockerd))
    await s.start()
    try:
        async def phase(name, want):
            return s.snapshot().residents[name]["phase"] == want

        await wait_for(lambda: phase("sglang", "ready"))
        assert (await s.control("load", "comfyui", by="@owner")).ok
        await wait_for(lambda: phase("comfyui", "ready"))
        assert await asyncio.to_thread(running_containers, dockerd) == ["comfyui"]
        assert (await s.control("pin", "comfyui", by="@owner", seconds=600)).ok
        refused = await s.control("unload", "comfyui")
        assert not refused.ok and "pinned by @owner" in refused.message
        assert "loading" in await s.logs("comfyui", 50)  # the container's own output (docker logs)
        assert (await s.control("unpin", "comfyui")).ok
        assert (await s.control("unload", "comfyui")).ok
        await wait_for(lambda: phase("comfyui", "stopped"))
    finally:
        await s.close()
