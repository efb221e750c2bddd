"""Local (plain httpx SSE -> SGLang stand-in) and cloud (anthropic SDK -> Anthropic stand-in) providers."""

from __future__ import annotations

import httpx
import pytest

from hub.llm import (
    AuthFailed,
    FirstTokenTimeout,
    Message,
    ProviderUnavailable,
    StallTimeout,
    StreamBroken,
    ToolSpec,
)
from hub.llm.cloud import CloudProvider
from hub.llm.local import LocalProvider
from hub.sim import anthropic as anthropic_sim
from hub.sim import sglang
from hub.sim.serve import free_port, serve_app

TIME = ToolSpec("get_time", "Current time", {"type": "object", "properties": {"tz": {"type": "string"}}})


class Recorder:
    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.sleeps: list[float] = []

    async def text(self, piece: str) -> None:
        self.pieces.append(piece)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.fixture
async def sg():
    async with serve_app(sglang.create_app()) as url:
        yield url


@pytest.fixture
async def an():
    async with serve_app(anthropic_sim.create_app(api_key="sk-test")) as url:
        yield url


async def post(url: str, path: str, body: dict) -> None:
    async with httpx.AsyncClient() as h:
        (await h.post(url + path, json=body)).raise_for_status()


def local(url: str, rec: Recorder, **kw) -> LocalProvider:
    return LocalProvider(base_url=url + "/v1", model="mistral-small-4", sleep=rec.sleep, **kw)


def cloud(url: str, rec: Recorder, key: str = "sk-test", **kw) -> CloudProvider:
    return CloudProvider(base_url=url, api_key=key, model="claude-sonnet-4-6", sleep=rec.sleep, **kw)


def user(text: str) -> list[Message]:
    return [Message("system", "You are a test."), Message("user", text)]


async def round_trip(provider, rec: Recorder) -> tuple:
    msgs = user('what time is it? [[call get_time {"tz": "UTC"}]]')
    first = await provider.stream(msgs, [TIME], max_tokens=100, on_text=rec.text)
    assert first.stop_reason == "tool_calls"
    [call] = first.tool_calls
    msgs += [Message("assistant", first.text, tool_calls=first.tool_calls),
             Message("tool", "12:00", tool_call_id=call.id, name=call.name)]
    second = await provider.stream(msgs, [TIME], max_tokens=100, on_text=rec.text)
    return call, second


async def test_local_streamed_tool_call_round_trip(sg):
    rec = Recorder()
    call, second = await round_trip(local(sg, rec), rec)
    assert call.name == "get_time" and call.arguments == {"tz": "UTC"}
    assert second.text == "Tool results: get_time: 12:00" and "".join(rec.pieces) == second.text
    assert second.usage.input_tokens > 0 and second.usage.output_tokens > 0


async def test_cloud_streamed_tool_use_round_trip(an):
    rec = Recorder()
    call, second = await round_trip(cloud(an, rec), rec)
    assert call.name == "get_time" and call.arguments == {"tz": "UTC"} and call.id.startswith("toolu_")
    assert second.text == "Tool results: get_time: 12:00" and "".join(rec.pieces) == second.text


@pytest.mark.parametrize("fmt", ["args", "json"])
async def test_leaked_tool_calls_text_becomes_calls_and_is_never_shown(sg, fmt):
    await post(sg, "/_sim/faults", {"add": [{"kind": "leak_tool_calls", "format": fmt}]})
    rec = Recorder()
    out = await local(sg, rec).stream(user('[[call get_time {"tz": "UTC"}]]'), [TIME], max_tokens=100,
                                      on_text=rec.text)
    assert [(c.name, c.arguments) for c in out.tool_calls] == [("get_time", {"tz": "UTC"})]
    assert out.stop_reason == "tool_calls" and out.text == ""
    assert "TOOL_CALLS" not in "".join(rec.pieces)
    assert len(out.tool_calls[0].id) == 9 and out.tool_calls[0].id.isalnum()


async def test_429_is_retried_after_the_servers_retry_after(sg):
    await post(sg, "/_sim/faults", {"add": [{"kind": "status", "status": 429, "retry_after": 1.5}]})
    rec = Recorder()
    provider = local(sg, rec)
    out = await provider.stream(user("hello"), [], max_tokens=50, on_text=rec.text)
    assert out.text == "You said: hello" and rec.sleeps == [1.5] and provider.retries == 1


async def test_5xx_is_retried_with_backoff_then_reported_as_unavailable(sg):
    await post(sg, "/_sim/faults", {"add": [{"kind": "status", "status": 500, "times": None}]})
    rec = Recorder()
    with pytest.raises(ProviderUnavailable) as err:
        await local(sg, rec, max_retries=2).stream(user("hello"), [], max_tokens=50, on_text=rec.text)
    assert rec.sleeps == [0.5, 1.0] and "server error 500" in str(err.value)


async def test_connection_refused_is_provider_unavailable():
    rec = Recorder()
    with pytest.raises(ProviderUnavailable) as err:
        await local(f"http://127.0.0.1:{free_port()}", rec, max_retries=0).stream(
            user("x"), [], max_tokens=5, on_text=rec.text)
    assert "connection failed" in str(err.value)


async def test_local_first_token_timeout_fires():
    async with serve_app(sglang.create_app(first_token_delay=5)) as url:
        rec = Recorder()
        with pytest.raises(FirstTokenTimeout):
            await local(url, rec, first_token_timeout_s=0.3).stream(user("x"), [], max_tokens=5, on_text=rec.text)
        assert rec.sleeps == []  # a timeout is not retried in place


async def test_stall_timeout_fires_mid_stream_and_keeps_the_partial(sg):
    await post(sg, "/_sim/faults", {"add": [{"kind": "stall", "after_tokens": 2, "seconds": 30}]})
    rec = Recorder()
    with pytest.raises(StallTimeout) as err:
        await local(sg, rec, stall_timeout_s=0.3).stream(user("a b c d"), [], max_tokens=50, on_text=rec.text)
    assert err.value.partial == "You said: " == "".join(rec.pieces)


async def test_disconnect_mid_stream_is_a_stream_broken_error_not_a_retry(sg):
    await post(sg, "/_sim/faults", {"add": [{"kind": "disconnect", "after_tokens": 2}]})
    rec = Recorder()
    with pytest.raises(StreamBroken) as err:
        await local(sg, rec).stream(user("a b c d"), [], max_tokens=50, on_text=rec.text)
    assert err.value.partial == "You said: " and rec.sleeps == []


async def test_cloud_caches_system_prompt_and_tools(an):
    rec = Recorder()
    provider = cloud(an, rec)
    msgs = [Message("system", "You are sovhub. " * 40), Message("user", "hi")]
    one = await provider.stream(msgs, [TIME], max_tokens=50, on_text=rec.text)
    two = await provider.stream(msgs, [TIME], max_tokens=50, on_text=rec.text)
    assert one.usage.cache_write_tokens > 0 and one.usage.cache_read_tokens == 0
    assert two.usage.cache_read_tokens == one.usage.cache_write_tokens and two.usage.cache_write_tokens == 0
    async with httpx.AsyncClient() as h:
        sent = (await h.get(an + "/_sim/stats")).json()["last_request"]
    assert sent["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent["tools"][-1]["cache_control"] == {"type": "ephemeral"}


async def test_cloud_overload_is_retried_and_error_events_are_typed(an):
    await post(an, "/_sim/faults", {"add": [{"kind": "status", "status": 529, "retry_after": 0.25}]})
    rec = Recorder()
    out = await cloud(an, rec).stream(user("hello"), [], max_tokens=50, on_text=rec.text)
    assert out.text == "You said: hello" and rec.sleeps == [0.25]
    await post(an, "/_sim/faults", {"add": [{"kind": "error_event", "after_tokens": 0, "times": None}]})
    with pytest.raises(ProviderUnavailable) as err:
        await cloud(an, Recorder(), max_retries=0).stream(user("hello"), [], max_tokens=50, on_text=rec.text)
    assert "overloaded_error" in str(err.value)


async def test_cloud_bad_key_is_auth_failed_and_not_retried(an):
    rec = Recorder()
    with pytest.raises(AuthFailed):
        await cloud(an, rec, key="wrong").stream(user("x"), [], max_tokens=5, on_text=rec.text)
    assert rec.sleeps == []


async def test_cloud_first_token_timeout_fires():
    async with serve_app(anthropic_sim.create_app(first_token_delay=5)) as url:
        with pytest.raises(FirstTokenTimeout):
            await cloud(url, Recorder(), first_token_timeout_s=0.3).stream(
                user("x"), [], max_tokens=5, on_text=Recorder().text)
