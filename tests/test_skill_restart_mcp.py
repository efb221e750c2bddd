"""restart_mcp against a real container running a FastMCP server, and the hub's own MCP bridge."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hub.config.model import HubConfig
from hub.context import Context
from hub.core import Hub
from hub.errors import ApprovalDenied, BackendDown, HubError, PermissionDenied
from hub.registry import Permission, SkillRegistry
from hub.sim.serve import free_port
from skills.ops.restart_mcp import RestartRefused, list_tools, wait_healthy
from tests.waiting import wait_until

TOKEN = "ops-test-token-0123456789abcdef"
SERVER = str(Path(__file__).with_name("ops_mcp_server.py"))


def ops_registry() -> SkillRegistry:
    registry = SkillRegistry()
    registry.discover("skills.ops")
    return registry


async def start_hub(tmp_path: Path, ops: dict, mcp: dict | None = None) -> Hub:
    config = HubConfig.model_validate({"storage": {"data_dir": str(tmp_path / "data")}, "skills": {"ops": ops},
                                       "mcp": mcp or {}})
    return await Hub.start(config, skills=ops_registry(), components=(), resume_jobs=False)


async def restart(hub: Hub, target: str, **kw):
    kw.setdefault("grant", Permission.destructive)
    return await hub.run_skill("restart_mcp", {"target": target}, Context.new("cli"), **kw)


def started_at(container) -> str:
    container.reload()
    return container.attrs["State"]["StartedAt"]


@pytest.fixture
async def mcp_container(docker_cleanup):
    port = free_port()
    name = f"mcp-ops-{port}"
    container = docker_cleanup.run_python(name, [SERVER, str(port), TOKEN])
    url = f"http://127.0.0.1:{port}/mcp"
    await wait_healthy(url, TOKEN, 30)
    return name, url, container, docker_cleanup


async def test_restarting_a_fastmcp_container_verifies_its_tools_then_cools_down(mcp_container, tmp_path):
    name, url, container, engine = mcp_container
    before = started_at(container)
    hub = await start_hub(tmp_path, {
        "docker_url": engine.base_url, "restart_cooldown_s": 600,
        "mcp_targets": {"tools": {"container": name, "url": url, "token": TOKEN, "verify_timeout_s": 30}}})
    try:
        out = await restart(hub, "tools")
        assert out.tool_count == 3 and out.tools == ["add", "echo", "whoami"]
        assert out.kind == "docker" and out.url == url
        assert out.seconds_to_healthy >= out.restart_seconds > 0
        assert started_at(container) != before  # a real process restart, not the old server answering
        assert await list_tools(url, TOKEN, 5) == ["add", "echo", "whoami"]

        with pytest.raises(RestartRefused, match=r"cool-down is 600 s"):
            await restart(hub, "tools")
    finally:
        await hub.stop()


async def test_a_concurrent_restart_is_refused_while_one_runs(mcp_container, tmp_path):
    name, url, _container, engine = mcp_container
    hub = await start_hub(tmp_path, {
        "docker_url": engine.base_url, "restart_cooldown_s": 0,
        "mcp_targets": {"tools": {"container": name, "url": url, "token": TOKEN}}})
    try:
        ctx = Context.new("cli")
        running = asyncio.Event()
        hub.bus.listen("job_started", lambda event, *a: running.set())
        first = await hub.start_skill("restart_mcp", {"target": "tools"}, ctx, grant=Permission.destructive)
        await running.wait()
        await asyncio.sleep(0.05)  # not a wait for a condition: the handler gets past its lock check, into the restart
        second = await hub.start_skill("restart_mcp", {"target": "tools"}, ctx, grant=Permission.destructive)
        results = await asyncio.gather(first.wait(), second.wait(), return_exceptions=True)
    finally:
        await hub.stop()
    assert results[0].tool_count == 3
    assert isinstance(results[1], RestartRefused) and "in progress" in str(results[1])


async def test_a_server_that_does_not_come_back_fails_with_the_timeout(docker_cleanup, tmp_path):
    port = free_port()
    name = f"mute-{port}"
    docker_cleanup.run_python(name, ["-c", "import time; time.sleep(600)"])
    hub = await start_hub(tmp_path, {
        "docker_url": docker_cleanup.base_url,
        "mcp_targets": {"mute": {"container": name, "url": f"http://127.0.0.1:{port}/mcp", "verify_timeout_s": 1,
                                 "stop_timeout_s": 1}}})
    try:
        with pytest.raises(BackendDown, match=r"did not list its tools within 1 s"):
            await restart(hub, "mute")
    finally:
        await hub.stop()


async def test_the_hub_itself_and_its_container_are_never_restarted(tmp_path):
    hub = await start_hub(tmp_path, {"hub_container": "sovhub",
                                     "mcp_targets": {"self": {"container": "sovhub", "url": "http://x/mcp"}}})
    try:
        with pytest.raises(RestartRefused, match="refusing to restart the hub itself"):
            await restart(hub, "hub-process")
        with pytest.raises(RestartRefused, match="the hub runs in that container"):
            await restart(hub, "self")
        with pytest.raises(HubError, match=r"unknown MCP target 'nope' \(known: hub, self\)"):
            await restart(hub, "nope")
    finally:
        await hub.stop()


async def test_restart_is_destructive_needs_the_grant_and_honours_approval(tmp_path):
    hub = await start_hub(tmp_path, {})
    try:
        with pytest.raises(PermissionDenied, match="needs destructive"):
            await restart(hub, "hub", grant=Permission.write)

        async def deny(skill, params, ctx) -> bool:
            return False

        with pytest.raises(ApprovalDenied):
            await restart(hub, "hub", approver=deny)
        with pytest.raises(BackendDown, match="MCP bridge is not running"):
            await restart(hub, "hub")
    finally:
        await hub.stop()


async def test_restarting_the_hubs_own_mcp_bridge_lists_every_skill_again(tmp_path):
    from bridges.mcp import component

    hub = await start_hub(tmp_path, {}, mcp={"port": 0, "tokens": [{"name": "ops", "token": TOKEN,
                                                                    "role": "owner"}]})
    try:
        await component.setup(hub)
        bridge = hub.extras["mcp"]
        url_before = bridge.url
        out = await restart(hub, "hub")
        assert out.kind == "hub" and out.url == url_before and bridge.restarts == 1
        assert {"diagnose_sglang", "restart_mcp", "search_blog", "get_article"} <= set(out.tools)
        await component.teardown(hub)
    finally:
        await hub.stop()



async def test_restart_of_the_hub_bridge_over_its_own_mcp_answers_first_then_restarts(tmp_path):
    from fastmcp import Client

    from bridges.mcp import component

    hub = await start_hub(tmp_path, {}, mcp={"port": 0, "tokens": [{"name": "ops", "token": TOKEN,
                                                                    "role": "owner"}]})
    restarted: list[dict] = []
    hub.bus.listen("mcp_restarted", lambda event: restarted.append(event.data))
    try:
        await component.setup(hub)
        bridge = hub.extras["mcp"]
        async with Client(bridge.url, auth=TOKEN) as client:
            out = (await client.call_tool("restart_mcp", {"target": "hub"})).structured_content
        assert out["deferred"] is True and out["seconds_to_healthy"] is None
        assert "restart_mcp" in out["tools"] and "restarts right after this answer" in out["summary"]
        await wait_until(lambda: restarted, what="the bridge's restart")
        assert bridge.restarts == 1 and restarted and restarted[0]["healthy"] is True
        async with Client(bridge.url, auth=TOKEN) as client:  # a new session on the restarted server
            assert "restart_mcp" in {t.name for t in await client.list_tools()}
        await component.teardown(hub)
    finally:
        await hub.stop()
