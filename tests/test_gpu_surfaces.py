"""The operator's GPU controls through the status page (token-gated), `/gpu` chat commands (the
shared command table) and the residency timeline rendered by headless Chromium, against stand-in
residents under the process driver."""

from __future__ import annotations

import asyncio
import io

import httpx
import pytest

from hub.commands.dispatch import dispatch as handle_command
from tests import status_helpers
from tests.status_helpers import status_hub
from tests.test_commands import make_env
from tests.test_status_page import OUTPUT, _chromium, _chromium_run
from tests.waiting import wait_until

TOKEN = "s3cret-status-token"


async def until(cond, timeout: float = 60.0) -> None:
    """`wait_until` with room for a swap of real stand-in processes on a loaded machine."""
    await wait_until(cond, timeout=timeout, what="the residents to reach the expected phases")


async def test_status_page_buttons_ask_the_scheduler_and_show_its_answer(tmp_path):
    async with status_hub(tmp_path, token=TOKEN, residents=status_helpers.sim_residents(), scheduler=True) \
            as (hub, url):
        async with httpx.AsyncClient(base_url=url) as c:
            await until(lambda: _is(hub, "sglang", "ready"))
            page = (await c.get("/")).text
            assert 'action="/api/gpu/load"' in page and 'action="/api/gpu/pin"' in page
            # no token: refused before the scheduler is asked
            assert (await c.post("/api/gpu/load", data={"name": "comfyui"})).status_code == 401
            auth = {"Authorization": f"Bearer {TOKEN}"}
            refused = await c.post("/api/gpu/load", params={"name": "sglang"}, headers=auth)
            assert refused.status_code == 409 and "already loaded" in refused.json()["message"]
            # a form post (the page's button): redirect to the page, which shows the scheduler's answer
            r = await c.post("/api/gpu/load", data={"name": "comfyui", "token": TOKEN})
            assert r.status_code == 303
            shown = (await c.get(r.headers["location"])).text
            assert "loading comfyui" in shown
            await until(lambda: _is(hub, "comfyui", "ready"))
            r = await c.post("/api/gpu/pin", params={"name": "comfyui", "for": "30m", "by": "@owner:hub"},
                             headers=auth)
            assert r.status_code == 200 and "pinned by @owner:hub" in r.json()["message"]
            page = (await c.get("/")).text
            assert "pinned by @owner:hub" in page
            r = await c.post("/api/gpu/unload", params={"name": "comfyui"}, headers=auth)
            assert r.status_code == 409 and "pinned by @owner:hub" in r.json()["message"]
            assert (await c.post("/api/gpu/unpin", params={"name": "comfyui"}, headers=auth)).status_code == 200
            assert (await c.post("/api/gpu/unload", params={"name": "comfyui"}, headers=auth)).status_code == 200
            await until(lambda: _is(hub, "comfyui", "stopped"))
            # live logs: the process driver's log file, on the page and as text
            logs = await c.get("/api/gpu/logs/comfyui", params={"lines": 50})
            assert logs.status_code == 200 and logs.text.strip()
            assert (await c.get("/api/gpu/logs/nope")).status_code == 404
            assert 'id="logs"' in (await c.get("/")).text


async def _is(hub, name: str, phase: str) -> bool:
    return hub.gpu.snapshot().residents[name]["phase"] == phase


async def test_gpu_chat_commands_show_the_queue_and_only_owners_change_it(tmp_path):
    async with status_hub(tmp_path, residents=status_helpers.sim_residents(), scheduler=True) as (hub, _):
        await until(lambda: _is(hub, "sglang", "ready"))
        env, out = make_env(hub, role="user")
        await handle_command(env, "/gpu")
        assert "sglang (default): ready" in out.replies[-1]
        await handle_command(env, "/gpu load comfyui")
        assert "owners only" in " ".join(out.replies[-1:]) and hub.gpu.snapshot().residents["comfyui"]["phase"] \
            == "stopped"
        owner, said = make_env(hub, role="owner")
        await handle_command(owner, "/gpu load comfyui")
        assert said.replies[-1].startswith("✅ loading comfyui")
        await until(lambda: _is(hub, "comfyui", "ready"))
        await handle_command(owner, "/gpu pin comfyui 20m")
        assert "pinned by @a:localhost" in said.replies[-1]
        await handle_command(owner, "/gpu unload comfyui")
        assert said.replies[-1].startswith("❌ refused: comfyui is pinned by @a:localhost")
        await handle_command(env, "/gpu logs comfyui")
        assert out.replies[-1].startswith("Last lines of **comfyui**")


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed (tests/run.sh installs it)")
async def test_the_residency_timeline_renders_each_residents_band_in_chromium(tmp_path):
    from PIL import Image

    from bridges.status.timeline import PALETTE

    async with status_hub(tmp_path, residents=status_helpers.sim_residents(), scheduler=True) as (hub, url):
        await until(lambda: _is(hub, "sglang", "ready"))
        async with hub.gpu.lease("comfyui", job_id="hero-1", context=_ctx(), est_seconds=1):
            await asyncio.sleep(1.0)  # the behaviour under test: a second of ComfyUI, a band the timeline draws
        await until(lambda: _is(hub, "sglang", "ready"))
        await asyncio.sleep(1.0)  # the behaviour under test: a second of SGLang after the swap back
        OUTPUT.mkdir(exist_ok=True)
        shot = OUTPUT / "gpu_timeline.png"
        shot.unlink(missing_ok=True)
        html = tmp_path / "timeline.html"
        async with httpx.AsyncClient(base_url=url) as c:
            page = (await c.get("/")).text
        svg = page.split('<section id="timeline"')[1].split("</section>")[0]
        assert 'data-resident="sglang"' in svg and 'data-resident="comfyui"' in svg and 'class="job"' in svg
        drawing = "<svg" + svg.split("<svg", 1)[1].split("</svg>")[0] + "</svg>"
        html.write_text("<!doctype html><body style='margin:0'>" + drawing + "</body>")
        await _chromium_run(f"--screenshot={shot}", "--window-size=920,300", html.as_uri())
    img = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
    colors = {img.getpixel((x, y)) for x in range(0, img.width, 2) for y in range(0, img.height, 2)}

    def seen(hex_color: str) -> bool:
        want = tuple(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
        return any(all(abs(a - b) <= 6 for a, b in zip(c, want, strict=True)) for c in colors)

    assert seen(PALETTE[0]), "no sglang band in the screenshot"
    assert seen(PALETTE[1]), "no comfyui band in the screenshot"


def _ctx():
    from hub.context import Context

    return Context.new("cli")


async def _cli(tmp_path, *args: str) -> tuple[int, str]:
    """The real `sovhub` console script in a child process (the hub runs on this event loop)."""
    import os
    import sys
    from pathlib import Path

    cfg = tmp_path / "cli.yaml"
    cfg.write_text(f"storage:\n  data_dir: {tmp_path}\nmatrix:\n  enabled: false\n")
    exe = Path(sys.executable).with_name("sovhub")
    proc = await asyncio.create_subprocess_exec(str(exe), "gpu", *args, "--config", str(cfg),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                env={**os.environ, "COLUMNS": "200", "SOVHUB_STATUS__TOKEN": TOKEN})
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode()


async def test_sovhub_gpu_cli_shows_and_changes_residents_through_the_running_hub(tmp_path):
    async with status_hub(tmp_path, token=TOKEN, residents=status_helpers.sim_residents(), scheduler=True) \
            as (hub, _):
        await until(lambda: _is(hub, "sglang", "ready"))
        await hub.gpu._publish(force=True)
        code, out = await _cli(tmp_path)
        assert code == 0 and "sglang (default): ready" in out, out
        code, out = await _cli(tmp_path, "load", "sglang")
        assert code == 1 and "refused: sglang is already loaded" in out
        code, out = await _cli(tmp_path, "pin", "comfyui", "--for", "30m")
        assert code == 0 and "comfyui pinned by cli:" in out
        await until(lambda: _is(hub, "comfyui", "ready"))
        await hub.gpu._publish(force=True)
        code, out = await _cli(tmp_path)
        assert "pinned by cli:" in out
        code, out = await _cli(tmp_path, "unload", "comfyui")
        assert code == 1 and "is pinned by cli:" in out
        code, out = await _cli(tmp_path, "logs", "comfyui", "-n", "20")
        assert code == 0 and out.strip()
        code, out = await _cli(tmp_path, "pin", "comfyui", "--for", "soon")
        assert code == 1 and "invalid pin duration" in out
