"""One set of shell-like rules for `key=value` arguments in chat commands, the CLI and schedules."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub import kvargs
from hub.commands import dispatch
from hub.commands.parser import Arg, Signature, UsageError, parse_args
from hub.config import load_config
from hub.core import Hub
from tests.test_commands import make_env
from tests.test_cron import registry

KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
VALUES = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=5))
def test_any_quoted_values_come_back_as_typed(pairs):
    line = " ".join(shlex.quote(f"{k}={v}") for k, v in pairs.items())
    assert kvargs.parse_line(line) == {k: kvargs.decode(v) for k, v in pairs.items()}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), min_size=1, max_size=3),
       st.dictionaries(KEYS, VALUES, max_size=4))
def test_the_rest_of_a_line_after_the_command_words_keeps_its_quoting(words, pairs):
    tail = " ".join(shlex.quote(f"{k}={v}") for k, v in pairs.items())
    got_words, raw = kvargs.remainder(" ".join(words) + " " + tail, len(words))
    assert got_words == words
    assert kvargs.parse_line(raw) == {k: kvargs.decode(v) for k, v in pairs.items()}


def test_an_unbalanced_quote_and_a_bare_word_are_named():
    with pytest.raises(kvargs.ArgumentError, match=r"\(No closing quotation\); check the quotes"):
        kvargs.parse_line('text="hello')
    with pytest.raises(kvargs.ArgumentError, match="expected key=value for the skill's arguments, got 'hello'"):
        kvargs.parse_line("hello")


def test_a_raw_argument_is_the_rest_of_the_chat_line_as_typed():
    sig = Signature("schedule", (Arg("action", choices=("add", "list")), Arg("args", kind="raw", required=False)))
    parsed = parse_args(sig, 'add nightly "0 6 * * *" echo text="hello world"')
    assert parsed.values == {"action": "add", "args": 'nightly "0 6 * * *" echo text="hello world"'}
    assert parse_args(sig, "list").values == {"action": "list", "args": None}
    with pytest.raises(UsageError, match=r"action must be one of add, list \(got .drop.\)"):
        parse_args(sig, "drop x")


async def test_schedule_add_in_chat_keeps_a_value_with_spaces(tmp_path):
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}}, environ={})
    hub = await Hub.start(config, skills=registry(), components=("hub.cron.component",))
    try:
        env, io = make_env(hub, role="owner")
        await dispatch(env, '/schedule add nightly "0 6 * * *" echo text="hello world" times=2')
        assert io.replies and io.replies[-1].startswith("Scheduled **nightly**"), io.replies
        assert (await hub.cron.get("nightly")).params == {"text": "hello world", "times": 2}
        await dispatch(env, "/schedule add quoted every 1h echo 'text=it''s \"fine\"'")
        assert (await hub.cron.get("quoted")).params == {"text": 'its "fine"'}
        await dispatch(env, "/run echo text='hello world' times=2")  # skill commands: the same rules
        assert "hello world hello world" in io.replies[-1]
    finally:
        await hub.stop()
