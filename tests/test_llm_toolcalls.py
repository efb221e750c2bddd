"""Pure parts of the providers: leaked tool-call parsing, the streaming guard, retry timing."""

from __future__ import annotations

from hub.llm.retry import backoff, retry_after_from
from hub.llm.toolcalls import LeakGuard, parse_leaked


def test_parse_leaked_args_format_with_several_calls_and_text_before():
    text = 'Sure. [TOOL_CALLS]get_time[ARGS]{"tz": "UTC"}[TOOL_CALLS]echo[ARGS]{"text": "a}b"}'
    before, calls = parse_leaked(text)
    assert before == "Sure." and [(c.name, c.arguments) for c in calls] == [
        ("get_time", {"tz": "UTC"}), ("echo", {"text": "a}b"})]


def test_parse_leaked_json_list_and_call_id_formats():
    _, calls = parse_leaked('[TOOL_CALLS][{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": "{}"}]')
    assert [(c.name, c.arguments) for c in calls] == [("a", {"x": 1}), ("b", {})]
    _, calls = parse_leaked('[TOOL_CALLS]a[CALL_ID]abc123XYZ[ARGS]{"x": 2}')
    assert calls[0].id == "abc123XYZ" and calls[0].arguments == {"x": 2}


def test_unparsable_leak_is_left_as_text():
    assert parse_leaked("[TOOL_CALLS]oops{not json") == ("[TOOL_CALLS]oops{not json", [])
    assert parse_leaked("no calls here") == ("no calls here", [])


def test_leak_guard_holds_back_a_marker_split_across_chunks():
    guard = LeakGuard()
    shown = "".join(guard.feed(p) for p in ["Hello [", "TOOL_", "CALLS]get", '_time[ARGS]{}'])
    assert shown == "Hello " and guard.tripped and guard.flush() == ""
    guard = LeakGuard()
    shown = "".join(guard.feed(p) for p in ["a [T", "he end]"]) + guard.flush()
    assert shown == "a [The end]"


def test_backoff_prefers_retry_after_and_caps_it():
    assert backoff(0, None) == 0.5 and backoff(3, None) == 4.0 and backoff(10, None) == 20.0
    assert backoff(0, 7) == 7 and backoff(0, 3600) == 60.0


def test_retry_after_header_forms():
    assert retry_after_from({"retry-after": "3"}) == 3.0
    assert retry_after_from({"retry-after-ms": "250"}) == 0.25
    assert retry_after_from({"retry-after": "Wed, 25 Nov 2026 12:00:10 GMT"}, now=1795608000.0) == 10.0
    assert retry_after_from({}) is None


def test_tool_call_ids_sent_to_mistral_are_nine_alphanumerics_and_stable():
    from hub.llm.local import mistral_id, to_openai_messages
    from hub.llm.types import Message, ToolCall

    assert mistral_id("abcDEF123") == "abcDEF123"
    mapped = mistral_id("toolu_01ABCdefGHIjklMNOpqrSTU")
    assert len(mapped) == 9 and mapped.isalnum() and mapped == mistral_id("toolu_01ABCdefGHIjklMNOpqrSTU")
    wire = to_openai_messages([Message("assistant", "", tool_calls=[ToolCall("call_123456789abc", "x", {})]),
                               Message("tool", "ok", tool_call_id="call_123456789abc")])
    assert wire[0]["tool_calls"][0]["id"] == wire[1]["tool_call_id"] == mistral_id("call_123456789abc")
