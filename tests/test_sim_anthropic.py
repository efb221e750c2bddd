"""The Anthropic stand-in speaks the Messages API wire format (real anthropic SDK)."""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from hub.sim import anthropic as anthropic_sim
from hub.sim.serve import serve_app

TOOLS = [{"name": "get_time", "description": "Current time",
          "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}}}]


@pytest.fixture
async def an():
    async with serve_app(anthropic_sim.create_app(api_key="sk-test")) as url:
        yield url


def client(url: str, key: str = "sk-test") -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0)


async def stats(url: str) -> dict:
    async with httpx.AsyncClient() as h:
        return (await h.get(url + "/_sim/stats")).json()


async def faults(url: str, *items: dict) -> None:
    async with httpx.AsyncClient() as h:
        (await h.post(url + "/_sim/faults", json={"add": list(items)})).raise_for_status()


async def test_stream_sends_the_messages_event_sequence(an):
    body = {"model": "claude-sonnet-4-6", "max_tokens": 100, "stream": True,
            "messages": [{"role": "user", "content": "hello world"}]}
    async with httpx.AsyncClient() as h:
        r = await h.post(an + "/v1/messages", json=body, headers={"x-api-key": "sk-test"})
    events = [ln[len("event: "):] for ln in r.text.splitlines() if ln.startswith("event: ")]
    assert events[:3] == ["message_start", "content_block_start", "ping"]
    assert set(events[3:-3]) == {"content_block_delta"}
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    data = [json.loads(ln[6:]) for ln in r.text.splitlines() if ln.startswith("data: ")]
    assert data[-2]["delta"]["stop_reason"] == "end_turn" and data[-2]["usage"]["output_tokens"] == 4


async def test_streamed_tool_use_round_trip_with_the_sdk(an):
    c = client(an)
    messages = [{"role": "user", "content": 'what time? [[call get_time {"tz": "UTC"}]]'}]
    async with c.messages.stream(model="claude-sonnet-4-6", max_tokens=200, messages=messages, tools=TOOLS) as s:
        first = await s.get_final_message()
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_time" and use.input == {"tz": "UTC"} and use.id.startswith("toolu_")
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "12:00"}]}]
    async with c.messages.stream(model="claude-sonnet-4-6", max_tokens=200, messages=messages, tools=TOOLS) as s:
        text = "".join([t async for t in s.text_stream])
    assert text == "Tool results: get_time: 12:00"


async def test_prompt_caching_creates_then_reads_the_marked_prefix(an):
    c = client(an)
    system = [{"type": "text", "text": "You are a hub. " * 50, "cache_control": {"type": "ephemeral"}}]
    kw = {"model": "claude-sonnet-4-6", "max_tokens": 50, "system": system}
    one = await c.messages.create(messages=[{"role": "user", "content": "first"}], **kw)
    two = await c.messages.create(messages=[{"role": "user", "content": "second"}], **kw)
    assert one.usage.cache_creation_input_tokens > 0 and one.usage.cache_read_input_tokens == 0
    assert two.usage.cache_read_input_tokens == one.usage.cache_creation_input_tokens
    assert two.usage.cache_creation_input_tokens == 0 and two.usage.input_tokens > 0


async def test_wrong_key_gets_401_in_the_api_error_shape(an):
    with pytest.raises(anthropic.AuthenticationError) as err:
        await client(an, key="nope").messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert err.value.body["type"] == "error"
    assert err.value.body["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}


async def test_429_and_529_carry_retry_after_and_typed_errors(an):
    await faults(an, {"kind": "status", "status": 429, "retry_after": 3},
                 {"kind": "status", "status": 529})
    c = client(an)
    with pytest.raises(anthropic.RateLimitError) as err:
        await c.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert err.value.response.headers["retry-after"] == "3"
    with pytest.raises(anthropic.OverloadedError):
        await c.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert (await stats(an))["by_status"] == {"429": 1, "529": 1}


async def test_error_event_mid_stream_raises_in_the_sdk(an):
    await faults(an, {"kind": "error_event", "after_tokens": 1})
    with pytest.raises(anthropic.APIStatusError) as err:
        async with client(an).messages.stream(
                model="m", max_tokens=50, messages=[{"role": "user", "content": "a b c"}]) as s:
            async for _ in s.text_stream:
                pass
    assert err.value.body["error"]["type"] == "overloaded_error"


async def test_request_counter_counts_every_messages_call(an):
    assert (await stats(an))["requests"] == 0
    c = client(an)
    await c.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    async with c.messages.stream(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}]) as s:
        await s.get_final_message()
    s = await stats(an)
    assert s["requests"] == 2 and s["streamed"] == 1 and s["last_request"]["messages"][0]["content"] == "x"


async def test_missing_max_tokens_is_a_400_invalid_request(an):
    async with httpx.AsyncClient() as h:
        r = await h.post(an + "/v1/messages", headers={"x-api-key": "sk-test"},
                         json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


async def test_max_tokens_stop_reason_when_the_reply_is_cut(an):
    m = await client(an).messages.create(
        model="m", max_tokens=3, messages=[{"role": "user", "content": "[[tokens 9]]"}])
    assert m.stop_reason == "max_tokens" and m.usage.output_tokens == 3
