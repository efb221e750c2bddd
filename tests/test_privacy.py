"""Local-only is absolute: the privacy gate, through every entry point, witnessed by the Anthropic
stand-in's request counter (it must stay at zero wherever local-only applies)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from fastmcp.exceptions import ToolError
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from hub.chat.api import ConversationKey, TurnRequest
from hub.chat.router import RouterInput, decide
from hub.context import Context
from hub.jobs import SkillRun
from hub.llm.cloud import CloudProvider
from hub.llm.types import Message
from hub.privacy import LOCAL_ONLY, POLICIES, CloudRefused, PrivacyGate, resolve
from hub.registry import skill
from hub.sim import anthropic as anthropic_sim
from hub.sim import sglang as sglang_sim
from hub.sim.serve import AppServer
from tests.chat_helpers import RecordingSink, chat_bed
from tests.test_mcp_http import TOKENS, WRITER, running

ROOT = Path(__file__).resolve().parents[1]
POLICY = st.sampled_from(POLICIES)
MAYBE = st.one_of(st.none(), POLICY)
LOCAL_TOKEN = "vibe-local-token-0123456789"


# -- the rule, on every combination ----------------------------------------------------------------
@settings(max_examples=400, deadline=None)
@given(default=POLICY, pinned=MAYBE, room=MAYBE, caller=MAYBE, marked=st.booleans())
def test_local_only_from_any_source_wins_and_nothing_else_makes_a_request_local_only(
        default, pinned, room, caller, marked):
    context = Context.new("matrix")
    context = context.restricted() if marked else context
    verdict = resolve(default=default, pinned=pinned, room=room, caller=caller, context=context)
    anywhere = marked or LOCAL_ONLY in (default, pinned, room, caller)
    assert verdict.local_only == anywhere
    if anywhere:
        line = verdict.refusal()
        assert "nothing was sent to Claude" in line and "\n" not in line


@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=30), override=st.sampled_from([None, "local", "cloud"]),
       local=st.sampled_from(["up", "down", "unknown"]), cloud=st.sampled_from(["up", "down", "disabled"]),
       blocker=st.sampled_from([None, "the GPU is busy with comfyui"]), budget=st.booleans())
def test_the_router_never_sends_or_fails_over_a_local_only_request_to_the_cloud(
        text, override, local, cloud, blocker, budget):
    route = decide(RouterInput(text=text, room_policy=LOCAL_ONLY, override=override, local_health=local,
                               cloud_state=cloud, gpu_blocker=blocker, budget_ok=budget, privacy_refusal="no."))
    assert route.target != "cloud" and route.fallback != "cloud"
    assert (route.refused == "no.") == (override == "cloud")


def test_the_mark_is_sticky_through_children_new_contexts_and_the_job_table():
    ctx = Context.new("matrix", user="@a:x").restricted()
    assert ctx.child().privacy == LOCAL_ONLY and ctx.child(origin="cron").privacy == LOCAL_ONLY
    assert Context.new("mcp", parent=ctx).privacy == LOCAL_ONLY
    assert Context.from_dict(ctx.as_dict()).privacy == LOCAL_ONLY
    assert Context.from_dict({"origin": "cli"}).privacy is None


# -- the cloud provider checks the gate itself ----------------------------------------------------
async def test_the_cloud_provider_refuses_local_only_and_contextless_calls_before_sending():
    server = AppServer(anthropic_sim.create_app(api_key="sk-test"))
    await server.start()
    try:
        async def discard(_: str) -> None:
            return None

        cloud = CloudProvider(model="claude-sonnet-4-6", api_key="sk-test", base_url=server.url, max_retries=0,
                              gate=PrivacyGate("auto", {"!private:x": LOCAL_ONLY}))
        msgs = [Message("user", "my secrets")]
        with pytest.raises(CloudRefused, match="nothing was sent"):
            await cloud.stream(msgs, [], max_tokens=50, on_text=discard, context=Context.new("cli").restricted())
        with pytest.raises(CloudRefused, match="without a request context"):
            await cloud.stream(msgs, [], max_tokens=50, on_text=discard)
        strict = CloudProvider(model="claude-sonnet-4-6", api_key="sk-test", base_url=server.url, max_retries=0,
                               gate=PrivacyGate(LOCAL_ONLY))
        with pytest.raises(CloudRefused, match="This hub is local-only"):  # the default needs no scope() call
            await strict.stream(msgs, [], max_tokens=50, on_text=discard, context=Context.new("cron"))
        async with __import__("httpx").AsyncClient() as http:
            assert (await http.get(server.url + "/_sim/stats")).json()["requests"] == 0
        done = await cloud.stream(msgs, [], max_tokens=50, on_text=discard, context=Context.new("cli"))
        assert done.text  # the same provider does serve a request that may reach the cloud
        await cloud.aclose()
        await strict.aclose()
    finally:
        await server.stop()


# -- chat turns ------------------------------------------------------------------------------------
async def test_claude_prefix_and_command_are_refused_in_a_local_only_room_with_the_way_out(tmp_path):
    async with chat_bed(tmp_path, routing={"rooms": {"!pinned:x": LOCAL_ONLY}}) as bed:
        for text, override in (("!claude what is in my notes?", None), ("what is in my notes?", "cloud")):
            outcome, sink = await bed.turn(text, policy=LOCAL_ONLY, override=override)
            assert outcome.route == "none" and sink.of("fail") == [outcome.error]
            assert outcome.error == ("This room is local-only, so nothing was sent to Claude; "
                                     "the room's owner can change that with `/model auto`.")
        outcome, _ = await bed.turn("!claude hi", room="!pinned:x", policy="cloud")  # the config pin wins
        assert "routing.rooms" in outcome.error
        outcome, sink = await bed.turn("!local hi", policy=LOCAL_ONLY)
        assert outcome.route == "local" and sink.of("finish")
        assert await bed.cloud_requests() == 0
        outcome, _ = await bed.turn("!claude hi", room="!open:x")
        assert outcome.route == "cloud" and await bed.cloud_requests() == 1  # the witness counts


async def test_a_local_only_default_refuses_every_explicit_cloud_choice(tmp_path):
    async with chat_bed(tmp_path, routing={"default_policy": LOCAL_ONLY}) as bed:
        outcome, _ = await bed.turn("!claude debug this root cause", policy="cloud")  # a room setting cannot relax it
        assert "routing.default_policy" in outcome.error
        outcome, _ = await bed.turn("debug this root cause")  # a cloud task rule does not apply either
        assert outcome.route == "local"
        assert await bed.cloud_requests() == 0


class AskParams(BaseModel):
    prompt: str


class AskResult(BaseModel):
    route: str
    error: str | None = None


@skill(name="ask_claude", description="A skill that asks the chat service for Claude", params=AskParams,
       result=AskResult)
async def ask_claude(run: SkillRun, params: AskParams) -> AskResult:
    request = TurnRequest(text=params.prompt, context=run.context, override="cloud",
                          conversation=ConversationKey("skill", run.job_id))
    outcome = await run.hub.chat.turn(request, RecordingSink())
    return AskResult(route=outcome.route, error=outcome.error)


async def test_skills_and_schedules_started_by_local_only_requests_cannot_reach_the_cloud(tmp_path):
    async with chat_bed(tmp_path) as bed:
        bed.hub.skills.register(ask_claude)
        from_private_turn = Context.new("matrix", user="@a:x").restricted().child()
        result = await bed.hub.run_skill("ask_claude", {"prompt": "leak?"}, from_private_turn)
        assert result.route == "none" and "This request is local-only" in result.error
        await bed.hub.stop()
        bed.hub = None
        hub = await bed.start_hub(routing={"default_policy": LOCAL_ONLY})
        hub.skills.register(ask_claude)
        result = await hub.run_skill("ask_claude", {"prompt": "nightly"}, Context.new("cron"))
        assert result.route == "none" and "This hub is local-only" in result.error
        assert await bed.cloud_requests() == 0


# -- MCP over HTTP and over stdio (`sovhub mcp`) ---------------------------------------------------
@pytest.fixture
async def models():
    local, cloud = AppServer(sglang_sim.create_app()), AppServer(anthropic_sim.create_app(api_key="sk-test"))
    await local.start()
    await cloud.start()
    yield local, cloud
    await local.stop()
    await cloud.stop()


async def _cloud_requests(cloud: AppServer) -> int:
    import httpx

    async with httpx.AsyncClient() as http:
        return (await http.get(cloud.url + "/_sim/stats")).json()["requests"]


def _llm(local: AppServer, cloud: AppServer) -> dict:
    return {"local": {"base_url": local.url + "/v1", "max_retries": 0},
            "cloud": {"base_url": cloud.url, "api_key": "sk-test", "max_retries": 0}}


async def test_mcp_ask_cloud_is_refused_by_a_local_only_default_and_by_a_local_only_token(tmp_path, models):
    local, cloud = models
    tokens = [*TOKENS, {"name": "vibe-local", "token": LOCAL_TOKEN, "role": "write", "policy": LOCAL_ONLY}]
    async with running(tmp_path / "a", components=("hub.chat.component",), tokens=tokens,
                       config={"llm": _llm(local, cloud)}) as (_, bridge):
        async with Client(bridge.url, auth=LOCAL_TOKEN) as vibe:
            with pytest.raises(ToolError, match="This caller is local-only, so nothing was sent to Claude"):
                await vibe.call_tool("ask", {"prompt": "secret code", "route": "cloud"})
            answer = (await vibe.call_tool("ask", {"prompt": "debug this root cause"})).structured_content
            assert answer["route"] == "local"  # a cloud task rule does not move a local-only token's ask
        assert await _cloud_requests(cloud) == 0
        async with Client(bridge.url, auth=WRITER) as other:  # the same hub, a token without the policy
            assert (await other.call_tool("ask", {"prompt": "hi", "route": "cloud"})).structured_content["route"] \
                == "cloud"
        assert await _cloud_requests(cloud) == 1
    async with running(tmp_path / "b", components=("hub.chat.component",),
                       config={"llm": _llm(local, cloud), "routing": {"default_policy": LOCAL_ONLY}}) as (_, bridge), \
            Client(bridge.url, auth=WRITER) as client:
        with pytest.raises(ToolError, match=r"This hub is local-only.*routing\.default_policy"):
            await client.call_tool("ask", {"prompt": "secret", "route": "cloud"})
    assert await _cloud_requests(cloud) == 1


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["routing:\n  default_policy: local-only\n", "mcp:\n  stdio_policy: local-only\n"],
                         ids=["default", "stdio_policy"])
async def test_sovhub_mcp_over_stdio_refuses_cloud_when_local_only(tmp_path, models, policy):
    local, cloud = models
    config = tmp_path / "hub.yaml"
    config.write_text(
        f"storage:\n  data_dir: {tmp_path / 'data'}\n"
        f"llm:\n  local:\n    base_url: {local.url}/v1\n  cloud:\n    base_url: {cloud.url}\n"
        f"    api_key_env: TEST_ANTHROPIC_KEY\n{policy}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TEST_ANTHROPIC_KEY": "sk-test"}
    env.pop("SOVHUB_CONFIG", None)
    transport = StdioTransport(command=str(Path(sys.executable).with_name("sovhub")), cwd=str(ROOT), env=env,
                               args=["mcp", "--config", str(config), "--registry", "tests.test_mcp_http:mcp_registry"],
                               log_file=tmp_path / "stderr.log")
    async with Client(transport, timeout=30) as client:
        with pytest.raises(ToolError, match=r"This (hub|caller) is local-only, so nothing was sent to Claude"):
            await client.call_tool("ask", {"prompt": "secret", "route": "cloud"})
        assert (await client.call_tool("ask", {"prompt": "hi"})).structured_content["route"] == "local"
    assert await _cloud_requests(cloud) == 0


optional = st.none() | st.text(max_size=20)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["matrix", "mcp", "cron", "cli", "http"]), optional, optional, st.text(max_size=20),
       st.floats(allow_nan=False), st.sampled_from([None, LOCAL_ONLY]))
def test_a_context_stored_as_a_dict_comes_back_equal_with_its_privacy_mark(origin, user, parent, id_, at, privacy):
    import dataclasses

    ctx = Context(origin=origin, user=user, parent_id=parent, id=id_, created_at=at, privacy=privacy)
    assert ctx.as_dict() == dataclasses.asdict(ctx)
    assert Context.from_dict(ctx.as_dict()) == ctx
