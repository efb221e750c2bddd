"""Properties of the gateway's pure parts: the usage reader and the OpenAI <-> hub translations."""

from __future__ import annotations

import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from bridges.api.messages import UsageReader
from bridges.api.wire import BadInput, LocalEvents, completion_body, to_messages, to_tool_choice, to_tools
from hub.llm.cloud import tool_choice_wire
from hub.llm.types import Completion, Image, ToolCall, Usage

text = st.text(max_size=40)


def anthropic_stream(inp: int, out: int, cw: int, cr: int, pieces: list[str]) -> bytes:
    events = [("message_start", {"type": "message_start", "message": {"id": "msg_1", "usage": {
        "input_tokens": inp, "output_tokens": 1, "cache_creation_input_tokens": cw, "cache_read_input_tokens": cr}}})]
    events += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "text_delta", "text": p}}) for p in pieces]
    events += [("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                  "usage": {"output_tokens": out}}), ("message_stop", {"type": "message_stop"})]
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**6), st.integers(1, 10**5), st.integers(0, 10**5), st.integers(0, 10**5),
       st.lists(text, max_size=8), st.lists(st.integers(1, 64), max_size=40))
def test_usage_read_from_a_stream_does_not_depend_on_how_it_was_cut(inp, out, cw, cr, pieces, cuts):
    raw = anthropic_stream(inp, out, cw, cr, pieces)
    reader, forwarded, at = UsageReader(), [], 0
    for size in [*cuts, len(raw)]:
        piece = raw[at:at + size]
        at += size
        reader.feed(piece)
        forwarded.append(piece)
    assert b"".join(forwarded) == raw  # the passthrough's copy: every byte, unchanged
    assert reader.usage == Usage(input_tokens=inp, output_tokens=out, cache_write_tokens=cw, cache_read_tokens=cr)


call = st.builds(lambda i, n, a: {"id": f"call_{i}", "type": "function",
                                  "function": {"name": n, "arguments": json.dumps(a)}},
                 st.integers(0, 99), st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
                 st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), st.integers() | text, max_size=3))
message = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "developer", "user"]), "content": text}),
    st.fixed_dictionaries({"role": st.just("user"),
                           "content": st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": text}),
                                               min_size=1, max_size=3)}),
    st.fixed_dictionaries({"role": st.just("assistant"), "content": text, "tool_calls": st.lists(call, max_size=3)}),
    st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": st.just("call_1"), "content": text}))


@settings(max_examples=200, deadline=None)
@given(st.lists(message, min_size=1, max_size=8))
def test_openai_messages_keep_their_text_and_tool_calls_through_the_translation(raw):
    out = to_messages(raw)
    assert len(out) == len(raw)
    for m, r in zip(out, raw, strict=True):
        content = r["content"] if isinstance(r["content"], str) else "".join(p["text"] for p in r["content"])
        assert m.content == content
        assert m.role == ("system" if r["role"] == "developer" else r["role"])
        calls = r.get("tool_calls") or []
        assert [(c.id, c.name, c.arguments) for c in m.tool_calls] == [
            (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls]


@settings(max_examples=100, deadline=None)
@given(text, st.lists(call, max_size=3))
def test_a_completion_comes_back_as_an_openai_body_the_translation_reads_again(answer, calls):
    tool_calls = [ToolCall(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls]
    body = completion_body("chatcmpl-1", "m", Completion(answer, tool_calls, Usage(3, 4), "stop", "m", "cloud"))
    again = to_messages([body["choices"][0]["message"]])[0]
    assert again.content == answer and [(c.id, c.name, c.arguments) for c in again.tool_calls] == [
        (c.id, c.name, c.arguments) for c in tool_calls]
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def test_images_become_inline_or_url_images_and_bad_ones_are_clear_errors_as_are_nameless_tools():
    import pytest

    png = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()
    [m] = to_messages([{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": png}},
        {"type": "image_url", "image_url": {"url": "https://example.org/cat.jpg", "detail": "low"}}]}])
    assert m.content == "what is this?"
    assert m.images == [Image(media_type="image/png", data=png.split(",")[1]), Image(url="https://example.org/cat.jpg")]
    for url, why in [("data:image/bmp;base64,AAAA", "not an image type Claude reads"),
                     ("data:image/png,rawbytes", "must be base64"), ("data:image/png;base64,@@@", "not valid base64"),
                     ("file:///etc/passwd", "only data: and http"), ("", "URL is required")]:
        with pytest.raises(BadInput, match=why):
            to_messages([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}])
    with pytest.raises(BadInput, match="only be sent in user messages"):
        to_messages([{"role": "system", "content": [{"type": "image_url", "image_url": {"url": png}}]}])
    with pytest.raises(BadInput, match=r"messages\[0\]: the cloud model reads text and image_url"):
        to_messages([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}])
    with pytest.raises(BadInput, match=r"tools\[0\]"):
        to_tools([{"type": "function", "function": {}}])


CHOICES = st.one_of(st.none(), st.sampled_from(["auto", "none", "required", "any", "", "tool"]),
                    st.builds(lambda n: {"type": "function", "function": {"name": n}},
                              st.sampled_from(["a", "b", "zz"])),
                    st.dictionaries(st.sampled_from(["type", "function", "name"]), st.text(max_size=3), max_size=2))


@settings(max_examples=300, deadline=None)
@given(CHOICES, st.lists(st.sampled_from(["a", "b"]), max_size=2, unique=True), st.sampled_from([None, True, False, 1]))
def test_tool_choice_maps_to_anthropics_or_is_a_clear_400_never_a_crash_or_a_dangling_name(raw, names, parallel):
    """Whatever the client sends: a BadInput naming the field, or a choice Anthropic accepts that
    names only offered tools (`required` -> `any`, a function -> `tool`)."""
    tools = to_tools([{"type": "function", "function": {"name": n}} for n in names])
    try:
        choice = to_tool_choice(raw, tools, parallel)
    except BadInput as exc:
        assert str(exc).split(":")[0] in ("tool_choice", "parallel_tool_calls")
        return
    if choice is None:
        assert raw is None and parallel is None
        return
    wire = tool_choice_wire(choice)
    assert wire["type"] in ("auto", "none", "any", "tool")
    assert wire["type"] != "tool" or wire["name"] in names
    assert wire["type"] not in ("any", "tool") or names
    assert wire.get("disable_parallel_tool_use", False) == (parallel is False and wire["type"] != "none")
    named = {"required": "any", "auto": "auto", "none": "none", None: "auto"}
    expected = "tool" if isinstance(raw, dict) else named[raw]
    assert wire["type"] == expected


def sglang_stream(pieces: list[str], prompt: int, usage_alone: bool) -> tuple[list[bytes], dict]:
    """SGLang's events for a streamed answer: role, content, finish, usage (alone, or on the finish
    chunk as some servers send it), [DONE]."""
    usage = {"prompt_tokens": prompt, "completion_tokens": len(pieces), "total_tokens": prompt + len(pieces)}

    def event(delta, finish=None, with_usage=None):
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        return b"data: " + json.dumps({"id": "x", "object": "chat.completion.chunk", "choices": choices,
                                       "usage": with_usage}).encode() + b"\n\n"

    events = [event({"role": "assistant", "content": ""})] + [event({"content": p}) for p in pieces]
    events.append(event({}, "stop", None if usage_alone else usage))
    if usage_alone:
        events.append(event(None, with_usage=usage))
    return [*events, b"data: [DONE]\n\n"], usage


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=10), st.integers(0, 5000), st.booleans(), st.booleans(),
       st.lists(st.integers(1, 90), max_size=50))
def test_local_events_forward_every_event_unchanged_and_read_the_usage_however_the_bytes_are_cut(
        pieces, prompt, usage_alone, show_usage, cuts):
    """What the client gets is the model's events, byte for byte, less the usage-only event when it
    did not ask for usage; the ledger's usage and the model's own [DONE] are seen whatever the cuts."""
    events, usage = sglang_stream(pieces, prompt, usage_alone)
    wire = b"".join(events)
    relay, got, pos = LocalEvents(show_usage), [], 0
    for cut in [*cuts, len(wire)]:
        got.append(relay.feed(wire[pos:pos + cut]))
        pos += cut
        if pos >= len(wire):
            break
    got.append(relay.rest())
    usage_only = b'"choices": [], "usage": {'
    expected = [e for e in events if show_usage or usage_only not in e]
    assert b"".join(got) == b"".join(expected)
    assert (relay.usage.input_tokens, relay.usage.output_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert relay.done
