"""The MCP bridge over real streamable HTTP: fastmcp's Client against a hub on an ephemeral port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema
import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, Field

from bridges.mcp.bridge import MCPBridge
from bridges.mcp.hub_tools import HUB_TOOL_NAMES
from bridges.mcp.skill_tools import may_defer
from hub.config import check_config, load_config
from hub.core import COMPONENTS, Hub
from hub.errors import ConfigError
from hub.jobs import SkillRun
from hub.registry import Permission, SkillRegistry, skill
from hub.sim import anthropic as anthropic_sim
from hub.sim import sglang as sglang_sim
from hub.sim.serve import AppServer
from tests.helpers_skills import test_registry
from tests.waiting import wait_until

OWNER = "owner-token-0123456789abcdef"
WRITER = "write-token-0123456789abcdef"
READER = "read-token-0123456789abcdef"
TOKENS = [{"name": "ana", "token": OWNER, "role": "owner"},
          {"name": "vibe", "token": WRITER, "role": "write"},
          {"name": "dash", "token": READER, "role": "read"}]


# -- the skills these tests export (compatibility names included) --------------------------------
class QueryParams(BaseModel):
    query: str = Field(min_length=1, description="what to look for")
    limit: int = Field(5, ge=1, le=50)


class Hits(BaseModel):
    titles: list[str]


@skill(name="search_blog", description="Search the blog", params=QueryParams, result=Hits)
async def search_blog(run: SkillRun, params: QueryParams) -> Hits:
    return Hits(titles=[f"{params.query} {i}" for i in range(params.limit)])


class SlugParams(BaseModel):
    slug: str = Field(pattern=r"^[a-z0-9-]+$")


class Article(BaseModel):
    slug: str
    body: str


@skill(name="get_article", description="One blog article", params=SlugParams, result=Article)
async def get_article(run: SkillRun, params: SlugParams) -> Article:
    return Article(slug=params.slug, body="text")


class Empty(BaseModel):
    pass


class Diagnosis(BaseModel):
    healthy: bool
    findings: list[str]


@skill(name="diagnose_sglang", description="Diagnose SGLang", params=Empty, result=Diagnosis, long_running=True)
async def diagnose_sglang(run: SkillRun, params: Empty) -> Diagnosis:
    await run.progress(1, 2, "reading logs")
    return Diagnosis(healthy=True, findings=[])


class SlowParams(BaseModel):
    steps: int = Field(6, ge=1, le=100)
    step_s: float = Field(0.1, gt=0, le=1)


class SlowResult(BaseModel):
    steps: int


@skill(name="slow_render", description="A long job that reports progress", params=SlowParams, result=SlowResult,
       permission=Permission.write, long_running=True, timeout_s=30)
async def slow_render(run: SkillRun, params: SlowParams) -> SlowResult:
    for i in range(params.steps):
        await run.progress(i + 1, params.steps, f"step {i + 1}")
        await asyncio.sleep(params.step_s)  # the skill's simulated work: the behaviour under test
    return SlowResult(steps=params.steps)


class Restarted(BaseModel):
    restarts: int


@skill(name="restart_bridge", description="Restart the hub's own MCP server", params=Empty, result=Restarted,
       permission=Permission.destructive)
async def restart_bridge(run: SkillRun, params: Empty) -> Restarted:
    bridge = run.hub.extras["mcp"]
    await bridge.restart()
    return Restarted(restarts=bridge.restarts)


def mcp_registry() -> SkillRegistry:
    registry = test_registry()
    for item in (search_blog, get_article, diagnose_sglang, slow_render, restart_bridge):
        registry.register(item)
    return registry


@contextlib.asynccontextmanager
async def running(tmp_path, components: tuple[str, ...] = COMPONENTS, config: dict | None = None,
                  **mcp: Any) -> AsyncIterator[tuple[Hub, MCPBridge]]:
    settings: dict[str, Any] = {"port": 0, "tokens": TOKENS, "call_wait_s": 5}
    settings.update(mcp)
    overrides = {"storage": {"data_dir": str(tmp_path)}, "mcp": settings, **(config or {})}
    hub = await Hub.start(load_config(None, overrides=overrides, environ={}), skills=mcp_registry(),
                          components=components)
    bridge = MCPBridge(hub)
    try:
        await bridge.start()
        hub.extras["mcp"] = bridge
        yield hub, bridge
    finally:
        await bridge.stop()
        await hub.stop()


# -- tools from the registry ----------------------------------------------------------------------
async def test_list_tools_matches_the_registry_with_schemas_and_hints(tmp_path):
    async with running(tmp_path) as (hub, bridge), Client(bridge.url, auth=READER) as client:
        tools = {t.name: t for t in await client.list_tools()}
        assert set(tools) == {s.name for s in hub.skills} | set(HUB_TOOL_NAMES)
        assert {"search_blog", "get_article", "diagnose_sglang"} <= set(tools)
        for s in hub.skills:
            tool = tools[s.name]
            assert tool.description == s.description
            assert tool.input_schema == s.input_schema()
            if may_defer(s):
                assert tool.output_schema["anyOf"][0] == s.output_schema()
                assert "job_id" in tool.output_schema["anyOf"][1]["properties"]
            else:
                assert tool.output_schema == s.output_schema()
            hints = tool.annotations
            assert hints.read_only_hint is (s.permission is Permission.read)
            assert hints.destructive_hint is (s.permission is Permission.destructive)
            assert hints.idempotent_hint is (s.permission is Permission.read)
        for name in HUB_TOOL_NAMES:
            assert tools[name].description


async def test_input_schemas_accept_good_arguments_and_reject_bad_ones(tmp_path):
    cases = {
        "search_blog": ({"query": "gb10", "limit": 3}, [{}, {"query": ""}, {"query": "x", "limit": 99},
                                                         {"query": 3}]),
        "get_article": ({"slug": "hello-world"}, [{"slug": "Not A Slug"}, {}]),
        "echo": ({"text": "hi", "times": 2}, [{"text": "hi", "times": 0}, {"times": 1}]),
    }
    async with running(tmp_path) as (_, bridge), Client(bridge.url, auth=WRITER) as client:
        tools = {t.name: t for t in await client.list_tools()}
        for name, (good, bads) in cases.items():
            validator = jsonschema.Draft202012Validator(tools[name].input_schema)
            assert validator.is_valid(good), name
            result = await client.call_tool(name, good)
            assert not result.is_error
            for bad in bads:
                assert not validator.is_valid(bad), (name, bad)
                refused = await client.call_tool(name, bad, raise_on_error=False)
                assert refused.is_error, (name, bad)


async def test_invalid_arguments_give_a_tool_error_naming_the_field(tmp_path):
    async with running(tmp_path) as (_, bridge), Client(bridge.url, auth=WRITER) as client:
        with pytest.raises(ToolError, match=r"invalid arguments for search_blog: limit: .*less than or equal to 50"):
            await client.call_tool("search_blog", {"query": "x", "limit": 500})
        with pytest.raises(ToolError, match=r"query: Field required"):
            await client.call_tool("search_blog", {})


async def test_a_fast_skill_returns_its_structured_result(tmp_path):
    async with running(tmp_path) as (_, bridge), Client(bridge.url, auth=READER) as client:
        result = await client.call_tool("search_blog", {"query": "spark", "limit": 2})
        assert result.structured_content == {"titles": ["spark 0", "spark 1"]}
        assert result.data.titles == ["spark 0", "spark 1"]
        assert result.meta["sovhub"]["job_id"]


# -- auth -----------------------------------------------------------------------------------------
async def test_missing_or_wrong_token_gets_401(tmp_path):
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}}
    headers = {"Accept": "application/json, text/event-stream"}
    async with running(tmp_path) as (_, bridge), httpx.AsyncClient() as http:
        missing = await http.post(bridge.url, json=body, headers=headers)
        wrong = await http.post(bridge.url, json=body, headers={**headers, "Authorization": "Bearer nope-nope"})
        right = await http.post(bridge.url, json=body, headers={**headers, "Authorization": f"Bearer {READER}"})
        assert missing.status_code == 401
        assert wrong.status_code == 401
        assert right.status_code == 200
        with pytest.raises(MCPError):  # the client surfaces the 401 as a failed request
            async with Client(bridge.url, auth="not-a-valid-token-at-all") as client:
                await client.list_tools()


async def test_a_read_token_cannot_call_a_destructive_tool_but_an_owner_can(tmp_path):
    async with running(tmp_path) as (hub, bridge):
        for token in (READER, WRITER):
            async with Client(bridge.url, auth=token) as client:
                with pytest.raises(ToolError, match=r"wipe \(destructive\) needs an owner token "
                                                    r"\(token '(dash|vibe)' has role (read|write)\)"):
                    await client.call_tool("wipe", {})
        async with Client(bridge.url, auth=READER) as client:
            with pytest.raises(ToolError, match="needs a write token"):
                await client.call_tool("slow_render", {"steps": 1})
        async with Client(bridge.url, auth=OWNER) as client:
            assert (await client.call_tool("wipe", {})).structured_content == {"wiped": True}
        refused = await hub.jobs.list(10, status="refused")
        assert {r.context.user for r in refused} == {"dash", "vibe"}


async def test_every_call_has_origin_mcp_and_the_token_name_as_user(tmp_path):
    async with running(tmp_path) as (hub, bridge), Client(bridge.url, auth=WRITER) as client:
        result = await client.call_tool("echo", {"text": "who"})
        record = await hub.jobs.get(result.meta["sovhub"]["job_id"])
        assert (record.context.origin, record.context.user) == ("mcp", "vibe")


async def test_a_foreign_host_header_gets_421(tmp_path):
    async with running(tmp_path) as (_, bridge), httpx.AsyncClient() as http:
        response = await http.post(bridge.url, json={}, headers={"Host": "evil.example.com",
                                                                 "Authorization": f"Bearer {OWNER}"})
        assert response.status_code == 421


async def test_without_tokens_loopback_callers_are_anonymous_writers(tmp_path):
    async with running(tmp_path, tokens=[]) as (hub, bridge), Client(bridge.url) as client:
        result = await client.call_tool("slow_render", {"steps": 1, "step_s": 0.01})
        assert result.structured_content == {"steps": 1}
        with pytest.raises(ToolError, match=r"callers without a token have role write \(mcp.anonymous_role\)"):
            await client.call_tool("wipe", {})
        record = await hub.jobs.get(result.meta["sovhub"]["job_id"])
        assert record.context.user == "anonymous"


async def test_binding_a_non_loopback_address_without_a_token_is_refused(tmp_path):
    path = tmp_path / "hub.yaml"
    path.write_text(f"storage:\n  data_dir: {tmp_path}\nmcp:\n  host: 0.0.0.0\n")
    issues = check_config(path, environ={})
    assert [(i.path, i.line) for i in issues] == [("mcp", 3)]
    assert "mcp.host is 0.0.0.0, which other machines can reach, but mcp.tokens is empty" in issues[0].message
    with pytest.raises(ConfigError, match=r"mcp\.tokens is empty"):
        load_config(path, environ={})
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}})
    config = config.model_copy(update={"mcp": config.mcp.model_copy(update={"host": "0.0.0.0", "port": 0})})
    hub = await Hub.start(config, skills=mcp_registry())
    try:
        with pytest.raises(ConfigError, match=r"mcp\.tokens is empty"):
            await MCPBridge(hub).start()
    finally:
        await hub.stop()


# -- long skills ----------------------------------------------------------------------------------
async def test_a_long_skill_sends_progress_notifications(tmp_path):
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with running(tmp_path) as (_, bridge), Client(bridge.url, auth=WRITER) as client:
        result = await client.call_tool("slow_render", {"steps": 4, "step_s": 0.05}, progress_handler=on_progress)
        assert result.structured_content == {"steps": 4}
    assert seen, "no progress notification arrived"
    assert seen[0][1] == 4 and seen[0][2].startswith("step ")
    assert [p for p, _, _ in seen] == sorted(p for p, _, _ in seen)


async def test_a_call_past_the_wait_limit_returns_a_job_id_whose_result_comes_later(tmp_path):
    async with running(tmp_path, call_wait_s=0.3) as (_, bridge), Client(bridge.url, auth=WRITER) as client:
        first = await client.call_tool("slow_render", {"steps": 8, "step_s": 0.1})
        pending = first.structured_content
        assert pending["pending"] is True and pending["status"] == "running"
        assert pending["job_id"] in first.content[0].text and "job_result" in first.content[0].text
        status = (await client.call_tool("job_status", {"job_id": pending["job_id"]})).structured_content
        assert status["status"] == "running" and status["progress"]["total"] == 8
        done = (await client.call_tool("job_result", {"job_id": pending["job_id"], "wait_s": 0.3}))
        for _ in range(20):
            if done.structured_content["done"]:
                break
            done = await client.call_tool("job_result", {"job_id": pending["job_id"], "wait_s": 0.3})
        assert done.structured_content["status"] == "succeeded"
        assert done.structured_content["result"] == {"steps": 8}


async def test_cancel_job_stops_a_running_job(tmp_path):
    async with running(tmp_path, call_wait_s=0.2) as (hub, bridge), Client(bridge.url, auth=WRITER) as client:
        pending = (await client.call_tool("slow_render", {"steps": 50, "step_s": 0.1})).structured_content
        cancelled = await client.call_tool("cancel_job", {"job_id": pending["job_id"]})
        assert cancelled.structured_content["status"] == "cancelled"
        assert (await hub.jobs.get(pending["job_id"])).status == "cancelled"
        with pytest.raises(ToolError, match="cancelled"):
            await client.call_tool("job_result", {"job_id": pending["job_id"]})


async def test_a_failing_skill_gives_a_tool_error_with_its_job(tmp_path):
    async with running(tmp_path) as (_, bridge), Client(bridge.url, auth=READER) as client:
        with pytest.raises(ToolError, match=r"boom failed: RuntimeError: the backend exploded \(job \w+\)"):
            await client.call_tool("boom", {})


# -- job privacy, status, chat --------------------------------------------------------------------
async def test_jobs_are_private_to_their_caller_unless_owner(tmp_path):
    async with running(tmp_path) as (_, bridge):
        async with Client(bridge.url, auth=WRITER) as vibe:
            job_id = (await vibe.call_tool("echo", {"text": "mine"})).meta["sovhub"]["job_id"]
            mine = (await vibe.call_tool("list_jobs", {})).structured_content["jobs"]
            assert [j["job_id"] for j in mine] == [job_id]
        async with Client(bridge.url, auth=READER) as dash:
            assert (await dash.call_tool("list_jobs", {})).structured_content["jobs"] == []
            with pytest.raises(ToolError, match="no job"):
                await dash.call_tool("job_status", {"job_id": job_id})
            with pytest.raises(ToolError, match="needs a write token"):
                await dash.call_tool("cancel_job", {"job_id": job_id})
        async with Client(bridge.url, auth=OWNER) as ana:
            everyone = (await ana.call_tool("list_jobs", {"status": "succeeded"})).structured_content["jobs"]
            assert job_id in [j["job_id"] for j in everyone]
            status = (await ana.call_tool("job_status", {"job_id": job_id})).structured_content
            assert (status["user"], status["origin"], status["status"]) == ("vibe", "mcp", "succeeded")


async def test_hub_status_reports_the_hub_and_the_bridge(tmp_path):
    async with running(tmp_path) as (hub, bridge), Client(bridge.url, auth=READER) as client:
        await client.call_tool("echo", {"text": "x"})
        status = (await client.call_tool("hub_status", {})).structured_content
        assert status["skills"] == len(hub.skills)
        assert status["mcp"]["url"] == bridge.url and status["mcp"]["calls"] >= 1


async def test_chat_tools_say_clearly_when_chat_is_not_configured(tmp_path):
    async with running(tmp_path, components=()) as (hub, bridge), Client(bridge.url, auth=WRITER) as client:
        assert hub.chat is None  # a hub built without the chat service
        for name, args in (("ask", {"prompt": "hi", "route": "local"}), ("ask_local", {"prompt": "hi"})):
            with pytest.raises(ToolError, match="chat is not configured"):
                await client.call_tool(name, args)
        with pytest.raises(ToolError, match="route"):
            await client.call_tool("ask", {"prompt": "hi", "route": "mars"})


async def test_restart_serves_again_on_the_same_url(tmp_path):
    async with running(tmp_path) as (hub, bridge):
        url = bridge.url
        await hub.extras["mcp"].restart()
        assert bridge.url == url and bridge.status()["restarts"] == 1 and bridge.status()["running"]
        async with Client(bridge.url, auth=READER) as client:
            assert (await client.call_tool("echo", {"text": "again"})).structured_content == {"text": "again"}


async def test_ask_and_ask_local_go_through_the_chat_service(tmp_path):
    local, cloud = AppServer(sglang_sim.create_app()), AppServer(anthropic_sim.create_app(api_key="sk-test"))
    await local.start()
    await cloud.start()
    llm = {"local": {"base_url": local.url + "/v1", "max_retries": 0},
           "cloud": {"base_url": cloud.url, "api_key": "sk-test", "max_retries": 0}}
    try:
        async with running(tmp_path, components=("hub.chat.component",), config={"llm": llm}) as (hub, bridge), \
                Client(bridge.url, auth=WRITER) as client:
            answer = (await client.call_tool("ask_local", {"prompt": "hello from vibe"})).structured_content
            assert answer["route"] == "local" and "hello from vibe" in answer["text"]
            tooled = await client.call_tool("ask", {"prompt": '[[call echo {"text": "hi"}]]', "route": "local"})
            assert 'echo: {"text":"hi"}' in tooled.structured_content["text"]
            echo_job = (await hub.jobs.list(5))[0]
            assert (echo_job.skill, echo_job.context.origin, echo_job.context.user) == ("echo", "mcp", "vibe")
            remote = (await client.call_tool("ask", {"prompt": "hello", "route": "cloud"})).structured_content
            assert remote["route"] == "cloud" and remote["text"]
            async with Client(bridge.url, auth=READER) as dash:
                with pytest.raises(ToolError, match="needs a write token"):
                    await dash.call_tool("ask_local", {"prompt": "hi"})
    finally:
        await local.stop()
        await cloud.stop()


async def test_a_client_that_gives_up_on_a_call_cancels_its_job(tmp_path):
    async with running(tmp_path, call_wait_s=20) as (hub, bridge), Client(bridge.url, auth=WRITER) as client:
        with pytest.raises(MCPError, match="timed out"):
            await client.call_tool("slow_render", {"steps": 50, "step_s": 0.1}, timeout=0.5)

        async def cancelled():
            jobs = await hub.jobs.list(1)
            return jobs if jobs and jobs[0].status == "cancelled" else None

        jobs = await wait_until(cancelled, what="the job to be cancelled")
        assert [(j.skill, j.status) for j in jobs] == [("slow_render", "cancelled")]


async def test_a_call_that_restarts_the_bridge_itself_finishes_its_job(tmp_path):
    async with running(tmp_path) as (hub, bridge):
        async with Client(bridge.url, auth=OWNER) as client:
            with contextlib.suppress(Exception):  # the call's own connection ends with the old server
                await client.call_tool("restart_bridge", {}, timeout=10)

        async def ended():
            jobs = await hub.jobs.list(1)
            return jobs if jobs[0].status not in ("queued", "running") else None

        jobs = await wait_until(ended, what="the restart job to end")
        assert (jobs[0].skill, jobs[0].status, jobs[0].result) == ("restart_bridge", "succeeded", {"restarts": 1})
        async with Client(bridge.url, auth=OWNER) as client:
            assert (await client.call_tool("echo", {"text": "back"})).structured_content == {"text": "back"}
