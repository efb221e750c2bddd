"""The status page: rendered by a real headless Chromium, its JSON API, and its token-gated action."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from pathlib import Path

import httpx
import pytest

from hub.config import load_config
from hub.context import Context
from hub.core import Hub
from hub.errors import HubError
from hub.serve import start_bridges
from hub.sim.comfyui import create_app as comfyui_app
from hub.sim.serve import free_port, serve_app
from tests import status_helpers
from tests.helpers_skills import test_registry
from tests.status_helpers import add_cost, status_hub

OUTPUT = Path(__file__).resolve().parents[1] / "test-output"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                  "--disable-dev-shm-usage"]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


async def _chromium_run(*args: str) -> bytes:
    """Run Chromium without blocking the loop (the page is served by this very event loop)."""
    with tempfile.TemporaryDirectory(prefix="sovhub-chromium-") as profile:
        proc = await asyncio.create_subprocess_exec(
            _chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 90)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
        return out


async def _some_history(hub) -> None:
    ctx = Context.new("cli", user="tester")
    await hub.run_skill("echo", {"text": "hello"}, ctx)
    with pytest.raises(Exception, match="exploded"):
        await hub.run_skill("boom", {}, ctx)
    await add_cost(hub, 0.42)


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed (tests/run.sh installs it)")
async def test_status_page_renders_in_headless_chromium_and_saves_a_screenshot(tmp_path):
    """A busy moment: ComfyUI swapped in and rendering, a chat job queued for SGLang with an ETA."""
    residents = status_helpers.sim_residents()
    async with status_hub(tmp_path, residents=residents, scheduler=True) as (hub, url):
        await _some_history(hub)
        ctx = Context.new("cli")
        waiting = asyncio.Event()
        hub.bus.listen("gpu_queued", lambda e: waiting.set() if e.data["job_id"] == "chat-turn-7" else None)
        async with hub.gpu.lease("comfyui", job_id="hero-image-1", context=ctx, label="hero image"):
            queued = asyncio.create_task(_lease_briefly(hub, "sglang", "chat-turn-7", "interactive"))
            await asyncio.wait_for(waiting.wait(), 10)
            OUTPUT.mkdir(exist_ok=True)
            shot = OUTPUT / "status_page.png"
            shot.unlink(missing_ok=True)
            await _chromium_run(f"--screenshot={shot}", "--window-size=1280,900", url + "/")
            dom = (await _chromium_run("--dump-dom", url + "/")).decode()
        await queued
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    for text in ("Resident model", "GPU queue", "Recent jobs", "Swap history", "Cloud spend", "Backend health",
                 "Matrix decryption health", "echo", "boom", "the backend exploded", "$0.42", "read-only"):
        assert text in dom, f"{text!r} is not on the page"
    queue = dom.split('id="queue"')[1].split("</section>")[0]
    assert "chat-turn-7" in queue and "interactive" in queue and "sglang" in queue
    resident = dom.split('id="resident"')[1].split("</section>")[0]
    assert "comfyui" in resident and "busy" in resident
    swaps = dom.split('id="swaps"')[1].split("</section>")[0]
    assert "comfyui" in swaps and "sglang" in swaps


async def _lease_briefly(hub, resident: str, job_id: str, job_class: str) -> None:
    async with hub.gpu.lease(resident, job_id=job_id, context=Context.new("matrix"), job_class=job_class,
                             label="chat turn"):
        pass


async def test_api_status_reports_jobs_spend_and_backend_health(tmp_path):
    comfy_port, dead_port = free_port(), free_port()
    residents = {
        "comfyui": {"kind": "image", "memory_gb": 30, "base_url": f"http://127.0.0.1:{comfy_port}",
                    "ready": {"url": f"http://127.0.0.1:{comfy_port}/system_stats"}},
        "tts": {"kind": "tts", "memory_gb": 20, "base_url": f"http://127.0.0.1:{dead_port}",
                "ready": {"url": f"http://127.0.0.1:{dead_port}/v1/models"}},
    }
    async with serve_app(comfyui_app(), port=comfy_port), status_hub(tmp_path, residents=residents) as (hub, url):
        await _some_history(hub)
        async with httpx.AsyncClient() as client:
            body = (await client.get(url + "/api/status")).json()
    assert [j["skill"] for j in body["recent_jobs"]] == ["boom", "echo"]
    assert [j["status"] for j in body["recent_jobs"]] == ["failed", "succeeded"]
    assert body["jobs_by_status"] == {"failed": 1, "succeeded": 1}
    assert body["spend"]["today_usd"] == pytest.approx(0.42) and body["spend"]["month_usd"] == pytest.approx(0.42)
    assert body["spend"]["daily_cap_usd"] == hub.config.routing.budget.daily_usd
    health = {b["name"]: b for b in body["backends"]}
    assert health["comfyui"]["ok"] is True and health["tts"]["ok"] is False
    assert health["cloud"]["detail"] == "no API key"
    assert body["matrix"] is None and body["actions_enabled"] is False


async def test_matrix_decryption_health_comes_from_the_matrix_bridge_status(tmp_path):
    class MatrixStatus:  # what the Matrix bridge registers in hub.extras["matrix"]
        def status(self):
            return {"connected": True, "undecryptable_events": 3, "rooms": 2}

    async with status_hub(tmp_path) as (hub, url):
        hub.extras["matrix"] = MatrixStatus()
        async with httpx.AsyncClient() as client:
            body = (await client.get(url + "/api/status")).json()
            page = (await client.get(url + "/")).text
    assert body["matrix"] == {"connected": True, "undecryptable_events": 3, "rooms": 2}
    assert "undecryptable_events" in page


async def test_page_is_read_only_without_a_token(tmp_path):
    async with status_hub(tmp_path) as (hub, url):
        handle = await hub.start_skill("nap", {"seconds": 1.5}, Context.new("cli"))
        async with httpx.AsyncClient() as client:
            page = (await client.get(url + "/")).text
            resp = await client.post(f"{url}/api/jobs/{handle.id}/cancel", headers={"Authorization": "Bearer x"})
        await handle.wait()
    assert resp.status_code == 403 and "status.token" in resp.json()["error"]
    assert "cancel</button>" not in page
    assert handle.status == "succeeded"


async def test_token_allows_cancelling_a_running_job(tmp_path):
    async with status_hub(tmp_path, token="s3cret-status-token") as (hub, url):
        handle = await hub.start_skill("nap", {"seconds": 1.8}, Context.new("cli"))
        async with httpx.AsyncClient() as client:
            page = (await client.get(url + "/")).text
            wrong = await client.post(f"{url}/api/jobs/{handle.id}/cancel", headers={"Authorization": "Bearer nope"})
            missing = await client.post(f"{url}/api/jobs/nosuchjob/cancel",
                                        headers={"Authorization": "Bearer s3cret-status-token"})
            ok = await client.post(f"{url}/api/jobs/{handle.id}/cancel", data={"token": "s3cret-status-token"})
        record = await hub.jobs.get(handle.id)
    assert "cancel</button>" in page and "actions enabled" in page
    assert wrong.status_code == 401 and missing.status_code == 404
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    assert record.status == "cancelled"


async def test_foreign_host_header_is_refused(tmp_path):
    async with status_hub(tmp_path) as (_, url):
        async with httpx.AsyncClient() as client:
            evil = await client.get(url + "/api/status", headers={"Host": "evil.example.com"})
            local = await client.get(url + "/api/status", headers={"Host": "localhost:1234"})
    assert evil.status_code == 421 and local.status_code == 200


async def test_a_taken_port_is_a_clear_error_not_an_exit(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = load_config(None, environ={}, overrides={"storage": {"data_dir": str(tmp_path)},
                                                          "status": {"port": port}})
        hub = await Hub.start(config, skills=test_registry(), components=())
        try:
            with pytest.raises(HubError, match=f"cannot listen on 127.0.0.1:{port}"):
                await start_bridges(hub, only={"status"})
        finally:
            await hub.stop()
