"""Third-party witnesses for the MCP server: the official conformance suite, the MCP Inspector's CLI
(a JavaScript client) and the official Python SDK over both transports.

Node 22, the conformance suite and the inspector are installed from npm into the test cache on first
use (`tests/testbed/npm.py`), so this runs on a fresh machine. The conformance suite talks to the
hub's HTTP server configured with tokens, through a proxy that adds a write token (the suite's CLI
cannot send headers). Its fixture tools that a skill can express are skills here: text, error,
an image (rendered by the real hero_image pipeline on the ComfyUI stand-in, so the image content
and the progress notifications come from hero_image), audio. Prompts, completions, sampling,
test resources and the suite's elicitation fixtures are not part of a product server.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import sys
import wave
from pathlib import Path

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from pydantic import BaseModel

from bridges.mcp.bridge import MCPBridge
from bridges.mcp.hub_tools import HUB_TOOL_NAMES
from hub.config.model import HubConfig
from hub.core import Hub
from hub.jobs import SkillRun
from hub.registry import Permission, SkillRegistry, skill
from hub.sim import comfyui
from skills.content.hero_image import RESIDENT, HeroImageParams, HeroImageResult, render, resident_url
from tests.helpers_content import content_config, stand_in
from tests.test_mcp_http import OWNER, TOKENS, WRITER, mcp_registry
from tests.testbed.bearer_proxy import bearer_proxy
from tests.testbed.npm import McpNodeTools, install_mcp_node_tools

ROOT = Path(__file__).resolve().parents[1]
SOVHUB = str(Path(sys.executable).with_name("sovhub"))
# The active suite's scenarios a hub serves; the others need fixtures a product server does not have.
MUST_PASS = ("server-initialize", "ping", "logging-set-level", "tools-list", "tools-call-simple-text",
             "tools-call-image", "tools-call-audio", "tools-call-error", "tools-call-with-progress",
             "server-sse-multiple-streams", "dns-rebinding-protection")


# -- the suite's fixture tools, as skills -----------------------------------------------------------
class NoArgs(BaseModel):
    pass


class Text(BaseModel):
    text: str


class Audio(BaseModel):
    path: str


@skill(name="test_simple_text", description="Conformance fixture: plain text", params=NoArgs, result=Text)
async def test_simple_text(run: SkillRun, params: NoArgs) -> Text:
    return Text(text="This is a simple text response for testing.")


@skill(name="test_error_handling", description="Conformance fixture: always fails", params=NoArgs, result=Text)
async def test_error_handling(run: SkillRun, params: NoArgs) -> Text:
    raise RuntimeError("This tool intentionally returns an error for testing")


async def _small_image(run: SkillRun) -> HeroImageResult:
    # A fresh seed each time: ComfyUI answers a repeated prompt from its cache, without step progress.
    params = HeroImageParams(prompt="a red pixel, conformance fixture", width=64, height=64)
    return await render(run, resident_url(run, RESIDENT), params)


@skill(name="test_image_content", description="Conformance fixture: a hero_image render", params=NoArgs,
       result=HeroImageResult, resident=RESIDENT, permission=Permission.write, timeout_s=60)
async def test_image_content(run: SkillRun, params: NoArgs) -> HeroImageResult:
    return await _small_image(run)


@skill(name="test_tool_with_progress", description="Conformance fixture: hero_image's step progress",
       params=NoArgs, result=Text, resident=RESIDENT, permission=Permission.write, timeout_s=60)
async def test_tool_with_progress(run: SkillRun, params: NoArgs) -> Text:
    image = await _small_image(run)
    return Text(text=f"rendered {image.width}x{image.height}")


@skill(name="test_audio_content", description="Conformance fixture: a short WAV", params=NoArgs, result=Audio,
       permission=Permission.write)
async def test_audio_content(run: SkillRun, params: NoArgs) -> Audio:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x10" * 800)
    path = run.artifacts_dir / "beep.wav"
    path.write_bytes(out.getvalue())
    return Audio(path=str(path))


FIXTURES = (test_simple_text, test_error_handling, test_image_content, test_tool_with_progress, test_audio_content)


@pytest.fixture(scope="module")
def node_tools() -> McpNodeTools:
    return install_mcp_node_tools()


@contextlib.asynccontextmanager
async def conformance_hub(tmp_path: Path):
    registry = SkillRegistry()
    for item in FIXTURES:
        registry.register(item)
    async with stand_in(comfyui, base_dir=tmp_path / "comfy", step_delay=0.06, load_delay=0) as comfy:
        settings = content_config(tmp_path, comfyui=comfy)
        settings["mcp"] = {"port": 0, "tokens": TOKENS, "call_wait_s": 30}
        hub = await Hub.start(HubConfig.model_validate(settings), skills=registry, components=(),
                              resume_jobs=False)
        bridge = MCPBridge(hub)
        try:
            await bridge.start()
            yield hub, bridge
        finally:
            await bridge.stop()
            await hub.stop()


async def _scenario(node_tools: McpNodeTools, url: str, scenario: str) -> list[dict]:
    proc = await asyncio.create_subprocess_exec(
        *node_tools.conformance("server", "--url", url, "--scenario", scenario, "--verbose"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    text = out.decode()
    try:
        checks, _ = json.JSONDecoder().raw_decode(text, text.index("[\n"))
    except ValueError:
        raise AssertionError(f"{scenario}: no results in the suite's output:\n{text[-2000:]}") from None
    return checks


@pytest.mark.slow
async def test_official_conformance_suite_passes_against_the_token_protected_http_server(tmp_path, node_tools):
    async with conformance_hub(tmp_path) as (_, bridge), bearer_proxy(bridge.url, WRITER) as url:
        gate = asyncio.Semaphore(3)

        async def one(scenario: str) -> tuple[str, list[dict]]:
            async with gate:
                return scenario, await _scenario(node_tools, url, scenario)

        results = dict(await asyncio.gather(*(one(s) for s in MUST_PASS)))
    failed = {s: [(c["id"], c.get("errorMessage")) for c in checks if c["status"] == "FAILURE"]
              for s, checks in results.items()}
    failed = {s: f for s, f in failed.items() if f}
    assert not failed, failed
    assert all(any(c["status"] == "SUCCESS" for c in checks) for checks in results.values()), results


# -- the MCP Inspector's CLI ------------------------------------------------------------------------
async def _inspector(node_tools: McpNodeTools, tmp_path: Path, *args: str, exit_code: int = 0) -> dict:
    env = {**os.environ, "HOME": str(tmp_path), "MCP_CATALOG_PATH": str(tmp_path / "catalog.json")}
    proc = await asyncio.create_subprocess_exec(*node_tools.inspector(*args), cwd=str(tmp_path), env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    said = f"inspector {' '.join(args)} exited {proc.returncode}:\n{out.decode()[-1000:]}\n{err.decode()[-1000:]}"
    assert proc.returncode == exit_code, said
    return json.loads(out) if out.strip() else json.loads(err)


@pytest.mark.slow
async def test_the_inspector_cli_lists_every_tool_and_calls_skills_over_http_and_stdio(tmp_path, node_tools):
    from tests.test_mcp_http import running

    async with running(tmp_path / "hub") as (hub, bridge):
        auth = ["--header", f"Authorization: Bearer {OWNER}"]
        listed = await _inspector(node_tools, tmp_path, bridge.url, "--transport", "http", *auth,
                                  "--method", "tools/list")
        assert {t["name"] for t in listed["tools"]} == {s.name for s in hub.skills} | set(HUB_TOOL_NAMES)
        called = await _inspector(node_tools, tmp_path, bridge.url, "--transport", "http", *auth,
                                  "--method", "tools/call", "--tool-name", "echo", "--tool-arg", "text=from js",
                                  "--tool-arg", "times=2")
        assert called["structuredContent"] == {"text": "from js from js"} and not called.get("isError")
        wrong = await _inspector(node_tools, tmp_path, bridge.url, "--transport", "http", *auth, "--method",
                                 "tools/call", "--tool-name", "echo", "--tool-arg", "txt=x", exit_code=5)
        assert "txt: unknown argument; did you mean 'text'?" in json.dumps(wrong)
    config = tmp_path / "stdio.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path / 'stdio'}\nmcp:\n  port: 1\n")
    listed = await _inspector(node_tools, tmp_path, "-e", f"PYTHONPATH={ROOT}", "--cwd", str(ROOT),
                              "--transport", "stdio", "--method", "tools/list", "--",
                              SOVHUB, "mcp", "--config", str(config), "--registry", "tests.test_mcp_http:mcp_registry")
    assert {s.name for s in mcp_registry()} <= {t["name"] for t in listed["tools"]}


# -- the official Python SDK ------------------------------------------------------------------------
async def _exercise(session: ClientSession, registry_names: set[str]) -> None:
    init = await session.initialize()
    assert init.server_info.name == "sovhub"
    tools = {t.name for t in (await session.list_tools()).tools}
    assert registry_names <= tools and set(HUB_TOOL_NAMES) <= tools
    result = await session.call_tool("echo", {"text": "sdk"})
    assert not result.is_error and result.structured_content["text"].startswith("sdk")
    wrong = await session.call_tool("echo", {"text": "sdk", "colour": "red"})
    assert wrong.is_error and "colour: unknown argument" in wrong.content[0].text


@pytest.mark.slow
async def test_the_official_python_sdk_works_over_streamable_http_with_a_token(tmp_path):
    from tests.test_mcp_http import running

    async with running(tmp_path) as (hub, bridge):
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {WRITER}"}, timeout=60) as http,
            streamable_http_client(bridge.url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await _exercise(session, {s.name for s in hub.skills})


@pytest.mark.slow
async def test_the_official_python_sdk_works_over_stdio_and_reads_an_artifact(tmp_path):
    async with stand_in(comfyui, base_dir=tmp_path / "comfy", step_delay=0, load_delay=0) as comfy:
        settings = content_config(tmp_path, comfyui=comfy)
        # The stdio hub runs the whole GPU scheduler: ComfyUI is already up, and frees memory by its API.
        settings["residents"]["comfyui"]["driver"] = {"type": "http_release", "release": "comfyui"}
        config = tmp_path / "hub.yaml"
        config.write_text(json.dumps({**settings, "mcp": {"port": 1, "stdio_role": "write"}}))
        params = StdioServerParameters(command=SOVHUB, cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)},
                                       args=["mcp", "--config", str(config), "--registry",
                                             "tests.test_mcp_conformance:stdio_registry"])
        with open(tmp_path / "stderr.log", "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
                await _exercise(session, {s.name for s in stdio_registry()})
                image = await session.call_tool("hero_image", {"prompt": "a lighthouse", "width": 64, "height": 64})
                assert not image.is_error and not image.structured_content.get("pending"), image.content
                png = next(b for b in image.content if b.type == "image")
                link = next(b for b in image.content if b.type == "resource_link")
                read_back = await session.read_resource(str(link.uri))
                assert base64.b64decode(read_back.contents[0].blob) == base64.b64decode(png.data)
                assert base64.b64decode(png.data)[:8] == b"\x89PNG\r\n\x1a\n"


def stdio_registry() -> SkillRegistry:
    from skills.content.hero_image import hero_image

    registry = mcp_registry()
    registry.register(hero_image)
    return registry
