"""The SGLang stand-in speaks the OpenAI wire format and SGLang's native endpoints (real openai SDK)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import httpx
import openai
import pytest

from hub.sim import sglang
from hub.sim.serve import free_port, serve_app
from tests.waiting import wait_until

TOOLS = [{"type": "function", "function": {"name": "get_time", "description": "Current time",
                                           "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}}]


@pytest.fixture
async def sg():
    async with serve_app(sglang.create_app()) as url:
        yield url


def client(url: str, **kw) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key="EMPTY", max_retries=0, **kw)


async def faults(url: str, *items: dict, **settings) -> None:
    async with httpx.AsyncClient() as h:
        r = await h.post(url + "/_sim/faults", json={"add": list(items), **settings})
        r.raise_for_status()


async def test_streamed_tool_call_arrives_as_openai_deltas_with_usage_last(sg):
    stream = await client(sg).chat.completions.create(
        model="mistral-small-4", tools=TOOLS, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": 'time? [[call get_time {"tz": "Europe/Paris"}]]'}])
    chunks = [c async for c in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    calls: dict[int, dict] = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            slot = calls.setdefault(tc.index, {"id": None, "name": "", "args": ""})
            slot["id"] = slot["id"] or tc.id
            slot["name"] += tc.function.name or ""
            slot["args"] += tc.function.arguments or ""
    assert calls[0]["name"] == "get_time" and json.loads(calls[0]["args"]) == {"tz": "Europe/Paris"}
    assert calls[0]["id"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


async def test_tool_results_are_answered_and_non_streaming_has_usage(sg):
    messages = [
        {"role": "user", "content": "[[call get_time {}]]"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "abcDEF123", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "abcDEF123", "content": "12:00"},
    ]
    r = await client(sg).chat.completions.create(model="m", messages=messages, tools=TOOLS)
    assert r.choices[0].message.content == "Tool results: get_time: 12:00"
    assert r.choices[0].finish_reason == "stop" and r.usage.prompt_tokens > 0


async def test_max_tokens_cuts_the_reply_with_finish_length(sg):
    r = await client(sg).chat.completions.create(
        model="m", max_tokens=5, messages=[{"role": "user", "content": "[[tokens 50]]"}])
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 5


async def test_scripted_replies_are_used_in_order(sg):
    async with httpx.AsyncClient() as h:
        await h.post(sg + "/_sim/script", json={"responses": [{"text": "first"}, {"text": "second"}]})
    c = client(sg)
    got = [(await c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]))
           .choices[0].message.content for _ in range(3)]
    assert got == ["first", "second", "You said: x"]


async def test_429_fault_carries_retry_after_then_clears(sg):
    await faults(sg, {"kind": "status", "status": 429, "retry_after": 7, "times": 1})
    with pytest.raises(openai.RateLimitError) as err:
        await client(sg).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert err.value.response.headers["retry-after"] == "7"
    assert err.value.body["message"]
    ok = await client(sg).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert ok.choices[0].message.content == "You said: x"


async def test_500_fault_is_an_internal_server_error(sg):
    await faults(sg, {"kind": "status", "status": 500})
    with pytest.raises(openai.InternalServerError):
        await client(sg).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


async def test_disconnect_mid_stream_breaks_the_connection_after_partial_text(sg):
    await faults(sg, {"kind": "disconnect", "after_tokens": 2})
    seen = []
    with pytest.raises(openai.APIConnectionError):
        stream = await client(sg).chat.completions.create(
            model="m", stream=True, messages=[{"role": "user", "content": "one two three four"}])
        async for c in stream:
            seen.append(c.choices[0].delta.content or "")
    assert "".join(seen) == "You said: "


async def test_stall_mid_stream_trips_a_client_read_timeout(sg):
    await faults(sg, {"kind": "stall", "after_tokens": 1, "seconds": 30})
    with pytest.raises(openai.APITimeoutError):
        stream = await client(sg, timeout=0.3).chat.completions.create(
            model="m", stream=True, messages=[{"role": "user", "content": "one two three"}])
        async for _ in stream:
            pass


async def test_leaked_tool_call_fault_puts_mistral_text_in_content(sg):
    await faults(sg, {"kind": "leak_tool_calls"})
    stream = await client(sg).chat.completions.create(
        model="m", tools=TOOLS, stream=True, messages=[{"role": "user", "content": '[[call get_time {"tz": "UTC"}]]'}])
    text, calls = "", []
    async for c in stream:
        text += c.choices[0].delta.content or ""
        calls += c.choices[0].delta.tool_calls or []
    assert text == '[TOOL_CALLS]get_time[ARGS]{"tz": "UTC"}' and calls == []


async def test_health_is_503_while_loading_then_200_and_ping_always_200():
    async with serve_app(sglang.create_app(load_seconds=0.5)) as url, httpx.AsyncClient() as h:
        assert (await h.get(url + "/health")).status_code == 503
        assert (await h.get(url + "/ping")).status_code == 200

        async def healthy() -> bool:
            return (await h.get(url + "/health")).status_code == 200

        await wait_until(healthy, what="the stand-in to finish loading")
        assert (await h.get(url + "/health_generate")).status_code == 200
        await faults(url, health_status=503)
        assert (await h.get(url + "/health")).status_code == 503


async def test_native_endpoints_report_server_args_model_load_and_metrics(sg):
    async with httpx.AsyncClient() as h:
        await client(sg).chat.completions.create(model="m", messages=[{"role": "user", "content": "x y"}])
        for path in ("/server_info", "/get_server_info"):
            info = (await h.get(sg + path)).json()
            assert info["tool_call_parser"] == "mistral" and info["attention_backend"] == "triton"
            assert info["internal_states"][0]["avg_spec_accept_length"] > 1 and info["version"]
        for path in ("/model_info", "/get_model_info"):
            assert (await h.get(sg + path)).json()["is_generation"] is True
        loads = (await h.get(sg + "/v1/loads")).json()
        assert loads["loads"][0]["num_running_reqs"] == 0
        assert (await h.get(sg + "/get_load")).json()[0]["num_reqs"] == 0
        assert (await h.get(sg + "/v1/models")).json()["data"][0]["id"] == "mistral-small-4"
        await faults(sg, retractions=3)
        text = (await h.get(sg + "/metrics")).text
        assert 'sglang:num_retracted_reqs{engine_type="unified",model_name="mistral-small-4"' in text
        assert "sglang:generation_tokens_total{" in text and "sglang:time_to_first_token_seconds_bucket{" in text
        line = next(ln for ln in text.splitlines() if ln.startswith("sglang:num_retracted_reqs"))
        assert line.endswith(" 3.0")
        assert (await h.post(sg + "/flush_cache")).status_code == 200


async def test_api_key_guards_everything_but_health_and_metrics():
    async with serve_app(sglang.create_app(api_key="s3cret")) as url, httpx.AsyncClient() as h:
        assert (await h.get(url + "/v1/models")).status_code == 401
        assert (await h.get(url + "/health")).status_code == 200
        assert (await h.get(url + "/metrics")).status_code == 200
        with pytest.raises(openai.AuthenticationError):
            await client(url).models.list()
        ok = openai.AsyncOpenAI(base_url=url + "/v1", api_key="s3cret")
        assert (await ok.models.list()).data[0].id == "mistral-small-4"


@pytest.mark.slow  # starts processes: outside the fast tier
async def test_command_line_serves_logs_sglang_lines_and_stops_on_sigterm():
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub.sim", "sglang", "--port", str(port), "--option", "decode_log_interval=2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=os.getcwd())
    try:
        lines = []
        while not any("listening on" in ln for ln in lines):
            lines.append((await asyncio.wait_for(proc.stdout.readline(), 20)).decode())
        r = await client(f"http://127.0.0.1:{port}").chat.completions.create(
            model="m", messages=[{"role": "user", "content": "[[tokens 6]]"}])
        assert r.usage.completion_tokens == 6
        proc.send_signal(signal.SIGTERM)
        out = (await asyncio.wait_for(proc.stdout.read(), 20)).decode()
        assert await proc.wait() == 0
        assert "Decode batch. #running-req: 1" in out and "gen throughput (token/s)" in out
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_an_input_longer_than_the_context_is_a_400_with_sglangs_message():
    async with serve_app(sglang.create_app(context_length=100)) as url:
        with pytest.raises(openai.BadRequestError) as err:
            await client(url).chat.completions.create(model="m", messages=[{"role": "user", "content": "x" * 2000}])
        assert "longer than the model's context length (100 tokens)" in err.value.body["message"]
