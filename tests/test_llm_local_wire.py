"""The local provider reads SGLang's SSE stream itself (no openai SDK on the hot path): its framing
and its assembly of streamed tool-call deltas are checked against random framings and against the
openai SDK reading the very same stream (the third-party witness)."""

from __future__ import annotations

import itertools
import json

import openai
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.llm import Message, ToolSpec
from hub.llm.errors import AuthFailed, BadRequest, ProviderUnavailable, RateLimited
from hub.llm.local import LocalProvider, map_status, sse_data
from hub.sim import sglang
from hub.sim.serve import serve_app

TOOLS = [ToolSpec("get_time", "Current time", {"type": "object", "properties": {"tz": {"type": "string"}}}),
         ToolSpec("add", "Add", {"type": "object", "properties": {"a": {"type": "integer"}}})]

payload = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30)


async def _chunks(items: list[bytes]):
    for item in items:
        yield item


def _frame(events: list[list[str]], spaced: list[bool], comments: bool, crlf: bool) -> bytes:
    lines: list[str] = []
    for event, space in zip(events, spaced, strict=False):
        if comments:
            lines.append(": keep-alive")
        # "data:" without the space only where the spec leaves it unambiguous (one leading space is stripped)
        lines += [("data: " if space or part.startswith(" ") else "data:") + part for part in event]
        lines.append("")
    return "".join(line + ("\r\n" if crlf else "\n") for line in lines).encode()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(payload, min_size=1, max_size=3), max_size=8), st.lists(st.booleans(), min_size=8,
       max_size=8), st.booleans(), st.booleans(), st.booleans(), st.lists(st.integers(0, 200), max_size=12))
def test_sse_framing_yields_each_events_data_and_stops_at_done(events, spaced, comments, done, crlf, cuts):
    import asyncio

    events = [e for e in events if e != ["[DONE]"]]
    raw = _frame(events, spaced, comments, crlf) + (b"data: [DONE]\n\ndata: after\n\n" if done else b"")
    bounds = sorted({min(c, len(raw)) for c in cuts} | {0, len(raw)})
    pieces = [raw[a:b] for a, b in itertools.pairwise(bounds)]  # however the network splits it

    async def collect() -> list[bytes]:
        return [d async for d in sse_data(_chunks(pieces))]

    assert asyncio.run(collect()) == ["\n".join(e).encode() for e in events]


def test_http_statuses_map_to_the_hubs_error_types():
    body = json.dumps({"error": {"message": "slow down"}}).encode()
    assert isinstance(map_status("local", 429, {"retry-after": "2"}, body), RateLimited)
    assert "slow down" in str(map_status("local", 429, {}, body))
    assert isinstance(map_status("local", 401, {}, b""), AuthFailed)
    assert isinstance(map_status("local", 503, {}, b"down"), ProviderUnavailable)
    assert isinstance(map_status("local", 400, {}, b'{"message": "bad tool"}'), BadRequest)
    assert "bad tool" in str(map_status("local", 400, {}, b'{"message": "bad tool"}'))


async def _sdk_calls(url: str, text: str) -> tuple[str, list[tuple[str, str, str]]]:
    """What the openai SDK assembles from the same stream: (text, [(id, name, raw arguments)])."""
    from hub.llm.local import to_openai_messages, to_openai_tools

    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="EMPTY", max_retries=0)
    try:
        stream = await client.chat.completions.create(
            model="mistral-small-4", messages=to_openai_messages([Message("user", text)]),
            tools=to_openai_tools(TOOLS), stream=True, max_tokens=100)
        parts: list[str] = []
        slots: dict[int, list[str]] = {}
        async for chunk in stream:
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            parts.append(delta.content or "")
            for tc in delta.tool_calls or []:
                slot = slots.setdefault(tc.index, ["", "", ""])
                slot[0] = tc.id or slot[0]
                slot[1] += (tc.function.name or "") if tc.function else ""
                slot[2] += (tc.function.arguments or "") if tc.function else ""
        return "".join(parts), [tuple(s) for _, s in sorted(slots.items())]
    finally:
        await client.close()


async def test_streamed_tool_call_deltas_assemble_as_the_openai_sdk_assembles_them():
    text = 'two calls [[call get_time {"tz": "Europe/Berlin"}]] [[call add {"a": 41}]]'
    async with serve_app(sglang.create_app()) as url:
        sdk_text, sdk_calls = await _sdk_calls(url, text)
        provider = LocalProvider(base_url=url + "/v1", model="mistral-small-4", max_retries=0)
        try:
            out = await provider.stream([Message("user", text)], TOOLS, max_tokens=100, on_text=_ignore)
        finally:
            await provider.aclose()
    assert out.text == sdk_text
    # ids are fresh per request; each call keeps the id the server streamed for it
    assert [(c.name, c.arguments) for c in out.tool_calls] == [(n, json.loads(a)) for _, n, a in sdk_calls]
    assert all(c.id.startswith("call_") for c in out.tool_calls) and all(i for i, _, _ in sdk_calls)
    assert len(out.tool_calls) == len(sdk_calls) >= 1 and out.stop_reason == "tool_calls"


async def _ignore(_: str) -> None:
    return None


def _peers(app, seen: list):
    """The ASGI app, noting each request's client address (one per TCP connection, as uvicorn reports it)."""
    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            seen.append(tuple(scope["client"]))
        await app(scope, receive, send)
    return wrapped


async def test_streamed_calls_reuse_one_connection():
    """After `[DONE]` the rest of the body is read, so the connection goes back to the pool: a new TCP
    connection per call cost ~0.4 ms of CPU per chat turn."""
    seen: list = []
    async with serve_app(_peers(sglang.create_app(), seen)) as url:
        provider = LocalProvider(base_url=url + "/v1", model="mistral-small-4", max_retries=0)
        try:
            for _ in range(3):
                out = await provider.stream([Message("user", "[[tokens 5]]")], TOOLS, max_tokens=100,
                                            on_text=_ignore)
                assert out.usage.output_tokens == 5
        finally:
            await provider.aclose()
    assert len(seen) == 3 and len(set(seen)) == 1


async def test_a_response_left_open_after_done_still_gives_the_answer():
    """A server that keeps the body open after `[DONE]` costs the connection, never the answer (nor a
    stall timeout)."""
    import asyncio

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        chunk = {"choices": [{"index": 0, "delta": {"content": "hello"}, "finish_reason": "stop"}]}
        await send({"type": "http.response.body", "body": f"data: {json.dumps(chunk)}\n\n".encode(),
                    "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True})
        await asyncio.sleep(30)  # the behaviour under test: a body left open after [DONE]

    async with serve_app(app) as url:
        provider = LocalProvider(base_url=url + "/v1", model="m", max_retries=0, stall_timeout_s=2)
        try:
            out = await provider.stream([Message("user", "hi")], [], max_tokens=10, on_text=_ignore)
        finally:
            await provider.aclose()
    assert out.text == "hello" and out.stop_reason == "stop"
