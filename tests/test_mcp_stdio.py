"""The MCP bridge over stdio: fastmcp's Client spawns the real `sovhub mcp` command."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from fastmcp.exceptions import ToolError

from bridges.mcp.hub_tools import HUB_TOOL_NAMES
from tests.test_mcp_http import mcp_registry

ROOT = Path(__file__).resolve().parents[1]
SOVHUB = str(Path(sys.executable).with_name("sovhub"))


def stdio_client(tmp_path: Path, extra_yaml: str = "") -> tuple[Client, Path]:
    config = tmp_path / "hub.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path / 'data'}\nmcp:\n  call_wait_s: 0.3\n{extra_yaml}")
    stderr = tmp_path / "stderr.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SOVHUB_CONFIG", None)
    transport = StdioTransport(command=SOVHUB, cwd=str(ROOT), env=env, log_file=stderr,
                               args=["mcp", "--config", str(config), "--registry", "tests.test_mcp_http:mcp_registry"])
    return Client(transport, timeout=30), stderr


@pytest.mark.slow
async def test_stdio_serves_the_registry_and_logs_only_to_stderr(tmp_path):
    client, stderr = stdio_client(tmp_path)
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with client:
        tools = {t.name: t for t in await client.list_tools()}
        registry = mcp_registry()
        assert set(tools) == {s.name for s in registry} | set(HUB_TOOL_NAMES)
        for s in registry:
            assert tools[s.name].input_schema == s.input_schema()
        # Any stray byte on stdout would have broken the JSON-RPC stream before this point.
        assert (await client.call_tool("echo", {"text": "over stdio"})).structured_content == {"text": "over stdio"}
        with pytest.raises(ToolError, match="times: Input should be greater than or equal to 1"):
            await client.call_tool("echo", {"text": "x", "times": 0})
        done = await client.call_tool("slow_render", {"steps": 2, "step_s": 0.05}, progress_handler=on_progress)
        assert done.structured_content == {"steps": 2} and seen
        pending = (await client.call_tool("slow_render", {"steps": 10, "step_s": 0.1})).structured_content
        assert pending["pending"] is True
        result = await client.call_tool("job_result", {"job_id": pending["job_id"], "wait_s": 0.3})
        while not result.structured_content["done"]:
            result = await client.call_tool("job_result", {"job_id": pending["job_id"], "wait_s": 0.3})
        assert result.structured_content["result"] == {"steps": 10}
        with pytest.raises(ToolError, match=r"wipe \(destructive\) needs role owner; this stdio server runs with "
                                            r"role write \(mcp.stdio_role") as refused:
            await client.call_tool("wipe", {})
        assert "token" not in str(refused.value)
        with pytest.raises(ToolError, match="boom failed"):
            await client.call_tool("boom", {})
    assert "the backend exploded" in stderr.read_text()  # the failing skill's traceback went to stderr


@pytest.mark.slow
async def test_stdio_role_owner_may_call_destructive_tools(tmp_path):
    client, stderr = stdio_client(tmp_path, "  stdio_role: owner\nlogging:\n  level: DEBUG\n")
    async with client:
        assert (await client.call_tool("wipe", {})).structured_content == {"wiped": True}
        jobs = (await client.call_tool("list_jobs", {})).structured_content["jobs"]
        assert [(j["skill"], j["origin"], j["user"]) for j in jobs] == [("wipe", "mcp", "stdio")]
    # once the hub behind stdio is up, start-up's objects are frozen out of the collector (hub.heap)
    assert re.search(r"start-up done: [1-9]\d* objects frozen", stderr.read_text())


@pytest.mark.slow
async def test_stdio_can_relay_to_the_running_hubs_http_server_with_a_token(tmp_path):
    from tests.test_mcp_http import WRITER, running

    async with running(tmp_path / "hub") as (hub, bridge):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SOVHUB_MCP_TOKEN": WRITER}
        transport = StdioTransport(command=SOVHUB, args=["mcp", "--connect", bridge.url], cwd=str(ROOT), env=env,
                                   log_file=tmp_path / "stderr.log")
        seen: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append(progress)

        async with Client(transport, timeout=30) as client:
            tools = {t.name for t in await client.list_tools()}
            assert tools == {s.name for s in hub.skills} | set(HUB_TOOL_NAMES), (tmp_path / "stderr.log").read_text()
            done = await client.call_tool("slow_render", {"steps": 3, "step_s": 0.05}, progress_handler=on_progress)
            assert done.structured_content == {"steps": 3}
            with pytest.raises(ToolError, match="needs an owner token"):
                await client.call_tool("wipe", {})
        jobs = await hub.jobs.list(10, status="succeeded")
        assert [(j.skill, j.context.origin, j.context.user) for j in jobs] == [("slow_render", "mcp", "vibe")]
        assert seen, "progress was not relayed"


@pytest.mark.slow
async def test_stdio_warns_when_a_hub_already_serves_mcp_on_the_configured_port(tmp_path):
    from tests.test_mcp_http import running

    async with running(tmp_path / "hub") as (_, bridge):
        client, stderr = stdio_client(tmp_path, f"  port: {bridge.port}\n")
        async with client:
            assert await client.list_tools()
    assert f"a hub already serves MCP at {bridge.url}" in stderr.read_text()
    assert "sovhub mcp --connect" in stderr.read_text()


@pytest.mark.slow
async def test_relay_without_a_token_says_the_hub_answered_401(tmp_path):
    import asyncio

    from tests.test_mcp_http import running

    async with running(tmp_path / "hub") as (_, bridge):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("SOVHUB_MCP_TOKEN", None)
        proc = await asyncio.create_subprocess_exec(SOVHUB, "mcp", "--connect", bridge.url, cwd=str(ROOT), env=env,
                                                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1 and out == b""
    said = " ".join(err.decode().split())
    assert "answered 401 Unauthorized: no token given; put one of the hub's mcp.tokens in $SOVHUB_MCP_TOKEN" in said


@pytest.mark.slow
async def test_stdio_answers_initialize_then_exits_cleanly_when_the_client_closes_stdin(tmp_path):
    import asyncio
    import json

    config = tmp_path / "hub.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path / 'data'}\nmcp:\n  port: 1\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(SOVHUB, "mcp", "--config", str(config), cwd=str(ROOT), env=env,
                                                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
    proc.stdin.write(json.dumps(hello).encode() + b"\n")
    await proc.stdin.drain()
    answer = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
    assert answer["result"]["serverInfo"]["name"] == "sovhub"
    proc.stdin.close()
    assert await asyncio.wait_for(proc.wait(), 30) == 0, (await proc.stderr.read()).decode()
    assert await proc.stdout.read() == b""  # nothing but protocol, and nothing after EOF


@pytest.mark.slow
async def test_tools_are_listed_even_when_the_hub_cannot_start_and_calls_say_why(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    config = tmp_path / "hub.yaml"
    config.write_text(f"storage:\n  data_dir: {blocker}\nmcp:\n  port: 1\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    transport = StdioTransport(command=SOVHUB, cwd=str(ROOT), env=env, log_file=tmp_path / "stderr.log",
                               args=["mcp", "--config", str(config), "--registry", "tests.test_mcp_http:mcp_registry"])
    async with Client(transport, timeout=30) as client:
        assert "echo" in {t.name for t in await client.list_tools()}
        with pytest.raises(ToolError, match="the hub did not start: "):
            await client.call_tool("echo", {"text": "x"})
