"""The gateway with the real openai and anthropic SDKs in front and the stand-ins behind it."""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest

from tests.api_helpers import PRIVATE, READER, WRITER, api_bed, cost_rows

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


OPEN: list = []


@pytest.fixture(autouse=True)
async def _close_sdk_clients():
    yield
    while OPEN:
        await OPEN.pop().close()


def oa(url: str, token: str = WRITER) -> openai.AsyncOpenAI:
    OPEN.append(openai.AsyncOpenAI(base_url=url + "/v1", api_key=token, max_retries=0))
    return OPEN[-1]


def an(url: str, token: str = WRITER) -> anthropic.AsyncAnthropic:
    OPEN.append(anthropic.AsyncAnthropic(base_url=url, api_key=token, max_retries=0))
    return OPEN[-1]


async def test_models_lists_local_auto_and_claude_and_a_bad_token_gets_401(tmp_path):
    async with api_bed(tmp_path) as (bed, url):
        names = [m.id async for m in oa(url, READER).models.list()]
        assert names[:3] == ["local", bed.hub.config.llm.local.model, "auto"] and "claude" in names
        with pytest.raises(openai.AuthenticationError):
            await oa(url, "not-a-token-of-this-hub").models.list()


async def test_local_streams_with_usage_in_the_final_chunk_and_one_cost_row_for_the_token(tmp_path):
    async with api_bed(tmp_path) as (bed, url):
        stream = await oa(url).chat.completions.create(
            model="local", messages=[{"role": "user", "content": "hello there"}], stream=True,
            stream_options={"include_usage": True}, temperature=0.3, extra_body={"top_k": 20})
        chunks = [c async for c in stream]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "You said: hello there"
        assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
        sent = bed.sglang.app.state.sim.last_request
        assert sent["model"] == bed.hub.config.llm.local.model and sent["top_k"] == 20  # passed through
        rows = await cost_rows(bed.hub)
        assert [(r["provider"], r["client"], r["origin"]) for r in rows] == [("local", "aider", "http")]
        assert rows[0]["output_tokens"] == chunks[-1].usage.completion_tokens


async def test_usage_not_asked_for_is_not_streamed_but_still_recorded(tmp_path):
    async with api_bed(tmp_path) as (bed, url):
        stream = await oa(url).chat.completions.create(
            model="local", messages=[{"role": "user", "content": "count me"}], stream=True)
        chunks = [c async for c in stream]
        assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)
        assert (await cost_rows(bed.hub))[0]["output_tokens"] > 0


@pytest.mark.parametrize("model", ["local", "claude"])
async def test_tool_calls_round_trip_in_openai_format(tmp_path, model):
    async with api_bed(tmp_path) as (bed, url):
        client = oa(url)
        messages = [{"role": "user", "content": 'what now? [[call get_weather {"city": "Paris"}]]'}]
        first = await client.chat.completions.create(model=model, messages=messages, tools=[WEATHER],
                                                     tool_choice="auto")
        call = first.choices[0].message.tool_calls[0]
        if model == "local":
            assert bed.sglang.app.state.sim.last_request["tool_choice"] == "auto"  # passed through
        assert first.choices[0].finish_reason == "tool_calls"
        assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
        messages += [first.choices[0].message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]
        stream = await client.chat.completions.create(model=model, messages=messages, tools=[WEATHER], stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert "sunny, 21 C" in text


async def test_streamed_tool_call_from_claude_arrives_as_openai_deltas(tmp_path):
    async with api_bed(tmp_path) as (bed, url):
        stream = await oa(url).chat.completions.create(
            model="claude", messages=[{"role": "user", "content": '[[call get_weather {"city": "Oslo"}]]'}],
            tools=[WEATHER], stream=True, stream_options={"include_usage": True})
        chunks = [c async for c in stream]
        calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
        assert calls[0].function.name == "get_weather" and json.loads(calls[0].function.arguments) == {"city": "Oslo"}
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
        assert chunks[-1].usage.prompt_tokens > 0
        rows = await cost_rows(bed.hub)
        assert rows[-1]["provider"] == "anthropic" and rows[-1]["client"] == "aider" and rows[-1]["usd"] > 0


async def test_local_only_token_asking_claude_is_refused_and_nothing_reaches_anthropic(tmp_path):
    async with api_bed(tmp_path) as (bed, url):
        for model in ("claude", bed.hub.config.llm.cloud.model):
            with pytest.raises(openai.PermissionDeniedError, match="local-only"):
                await oa(url, PRIVATE).chat.completions.create(model=model,
                                                               messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(anthropic.PermissionDeniedError, match="local-only"):
            await an(url, PRIVATE).messages.create(model="claude-sonnet-4-6", max_tokens=50,
                                                   messages=[{"role": "user", "content": "hi"}])
        auto = await oa(url, PRIVATE).chat.completions.create(model="auto",
                                                              messages=[{"role": "user", "content": "hi"}])
        assert auto.choices[0].message.content == "You said: hi"
        assert await bed.cloud_requests() == 0


async def test_read_token_may_list_models_but_not_ask(tmp_path):
    async with api_bed(tmp_path) as (bed, url):
        with pytest.raises(openai.PermissionDeniedError, match="write token"):
            await oa(url, READER).chat.completions.create(model="local", messages=[{"role": "user", "content": "x"}])
        assert await bed.local_requests() == 0


async def test_messages_passthrough_streams_anthropic_bytes_unchanged_with_the_hubs_key(tmp_path):
    async with api_bed(tmp_path) as (bed, url):
        body = {"model": "claude-sonnet-4-6", "max_tokens": 200, "stream": True,
                "messages": [{"role": "user", "content": "relay me"}]}
        async with httpx.AsyncClient() as h:
            via_hub = await h.post(url + "/v1/messages", json=body, headers={
                "x-api-key": WRITER, "anthropic-version": "2023-06-01"})
            direct = await h.post(bed.anthropic.url + "/v1/messages", json=body, headers={
                "x-api-key": "sk-test", "anthropic-version": "2023-06-01"})
        assert via_hub.status_code == 200

        def events(raw: str) -> list[str]:  # request and message ids differ per call; nothing else may
            import re
            return re.sub(r'"(msg|req)_[A-Za-z0-9]+"', '"ID"', raw).split("\n\n")

        assert events(via_hub.text) == events(direct.text)
        async with an(url).messages.stream(model="claude-sonnet-4-6", max_tokens=100,
                                           messages=[{"role": "user", "content": "via the SDK"}]) as stream:
            text = "".join([t async for t in stream.text_stream])
            final = await stream.get_final_message()
        assert text == "You said: via the SDK"
        rows = [r for r in await cost_rows(bed.hub) if r["provider"] == "anthropic"]
        assert len(rows) == 2 and rows[-1]["client"] == "aider"
        assert rows[-1]["output_tokens"] == final.usage.output_tokens and rows[-1]["usd"] > 0


async def test_messages_over_the_spend_cap_are_refused_before_anthropic_sees_them(tmp_path):
    async with api_bed(tmp_path, routing={"budget": {"daily_usd": 0.0001}}) as (bed, url):
        with pytest.raises(anthropic.RateLimitError, match="budget is reached"):
            await an(url).messages.create(model="claude-sonnet-4-6", max_tokens=4000,
                                          messages=[{"role": "user", "content": "expensive"}])
        assert await bed.cloud_requests() == 0


async def test_unknown_model_is_a_404_naming_the_models_served(tmp_path):
    async with api_bed(tmp_path) as (_, url):
        with pytest.raises(openai.NotFoundError, match="local"):
            await oa(url).chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])


async def test_legacy_completions_pass_through_to_sglang_streamed_or_not_with_one_cost_row_each(tmp_path):
    async with api_bed(tmp_path) as (bed, url):
        client = oa(url)
        whole = await client.completions.create(model="local", prompt="complete me", max_tokens=50,
                                                extra_body={"top_k": 5})
        assert whole.object == "text_completion" and whole.choices[0].text == "You said: complete me"
        sent = bed.sglang.app.state.sim.last_request
        assert sent["model"] == bed.hub.config.llm.local.model and sent["top_k"] == 5
        stream = await client.completions.create(model="auto", prompt="and stream me", stream=True)
        chunks = [c async for c in stream]
        assert "".join(c.choices[0].text for c in chunks if c.choices) == "You said: and stream me"
        assert all(c.usage is None for c in chunks)  # not asked for: read for the ledger, not shown
        rows = await cost_rows(bed.hub)
        assert [(r["provider"], r["client"]) for r in rows] == [("local", "aider")] * 2
        assert all(r["output_tokens"] > 0 for r in rows)


async def test_legacy_completions_for_claude_are_a_clear_400_and_anthropic_sees_nothing(tmp_path):
    async with api_bed(tmp_path) as (bed, url):
        with pytest.raises(openai.BadRequestError) as refused:
            await oa(url).completions.create(model="claude", prompt="hi")
        assert "cannot serve legacy completions" in refused.value.message
        assert await bed.cloud_requests() == 0


async def test_tool_choice_reaches_claude_as_anthropics_and_is_obeyed(tmp_path):
    """none / required / a named function / parallel_tool_calls=false, each as Anthropic spells it."""
    async with api_bed(tmp_path) as (bed, url):
        client = oa(url)
        marker = [{"role": "user", "content": 'go [[call get_weather {"city": "Paris"}]]'}]
        plain = [{"role": "user", "content": "just talk"}]
        held = await client.chat.completions.create(model="claude", messages=marker, tools=[WEATHER],
                                                    tool_choice="none")
        assert held.choices[0].message.tool_calls is None
        assert (await bed.stats(bed.anthropic))["last_request"]["tool_choice"] == {"type": "none"}
        forced = await client.chat.completions.create(model="claude", messages=plain, tools=[WEATHER],
                                                      tool_choice="required", parallel_tool_calls=False)
        assert forced.choices[0].message.tool_calls[0].function.name == "get_weather"
        assert forced.choices[0].finish_reason == "tool_calls"
        assert (await bed.stats(bed.anthropic))["last_request"]["tool_choice"] == {
            "type": "any", "disable_parallel_tool_use": True}
        stream = await client.chat.completions.create(
            model="claude", messages=plain, tools=[WEATHER], stream=True,
            tool_choice={"type": "function", "function": {"name": "get_weather"}})
        calls = [tc for c in [c async for c in stream] if c.choices for tc in c.choices[0].delta.tool_calls or []]
        assert [c.function.name for c in calls] == ["get_weather"]
        assert (await bed.stats(bed.anthropic))["last_request"]["tool_choice"] == {"type": "tool",
                                                                                  "name": "get_weather"}
        sent = await bed.cloud_requests()
        with pytest.raises(openai.BadRequestError, match="no tool named 'nope'"):
            await client.chat.completions.create(model="claude", messages=plain, tools=[WEATHER],
                                                 tool_choice={"type": "function", "function": {"name": "nope"}})
        assert await bed.cloud_requests() == sent


async def test_image_parts_reach_claude_as_image_blocks_and_a_bad_image_is_a_400_before_anthropic(tmp_path):
    import base64

    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(64))).decode()
    async with api_bed(tmp_path) as (bed, url):
        client = oa(url)
        answer = await client.chat.completions.create(model="claude", messages=[{"role": "user", "content": [
            {"type": "text", "text": "compare these"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
            {"type": "image_url", "image_url": {"url": "https://example.org/cat.jpg", "detail": "high"}}]}])
        assert answer.choices[0].message.content == "You said: compare these"
        [message] = (await bed.stats(bed.anthropic))["last_request"]["messages"]
        assert message["content"] == [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
            {"type": "image", "source": {"type": "url", "url": "https://example.org/cat.jpg"}},
            {"type": "text", "text": "compare these"}]
        sent = await bed.cloud_requests()
        with pytest.raises(openai.BadRequestError, match="image/bmp is not an image type Claude reads"):
            await client.chat.completions.create(model="claude", messages=[{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]}])
        assert await bed.cloud_requests() == sent
