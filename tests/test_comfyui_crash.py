"""ComfyUI dying mid-job (a real process, SIGKILLed while sampling) fails the job with words, not "ReadError: "."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import httpx
import pytest

from hub.context import Context
from hub.errors import BackendDown
from hub.sim.serve import free_port
from tests.helpers_content import content_config, content_hub
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]


async def test_comfyui_killed_mid_job_fails_the_job_saying_it_stopped_answering(tmp_path):
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub.sim", "comfyui", "--port", str(port), "--option", "step_delay=0.3",
        "--option", "load_delay=0", "--option", f"base_dir={tmp_path / 'comfy'}", cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            async def up() -> bool:
                return (await http.get(url + "/system_stats")).status_code == 200

            await wait_until(up, timeout=10, what="the ComfyUI stand-in to serve", ignoring=(httpx.HTTPError,))
        async with content_hub(content_config(tmp_path, comfyui=url)) as hub:
            handle = await hub.start_skill("hero_image", {"prompt": "a slow picture", "steps": 20},
                                           Context.new("cli"))
            sampling = asyncio.Event()
            handle.on_progress(lambda p: sampling.set())
            await asyncio.wait_for(sampling.wait(), 20)
            proc.send_signal(signal.SIGKILL)
            with pytest.raises(BackendDown) as info:
                await handle.wait()
        message = str(info.value)
        assert message.startswith(f"ComfyUI at {url} stopped answering while the image was rendering (")
        assert message.endswith("it may have crashed or been stopped — the job was not finished")
        assert "ReadError: " not in message
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
