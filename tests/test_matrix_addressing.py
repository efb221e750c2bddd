"""Who is the bot being talked to: mention rules as a table, and properties over random text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridges.matrix.addressing import (
    BotNames,
    is_mentioned,
    message_text,
    pill_targets,
    strip_mention,
    strip_reply_fallback,
)

BOT = BotNames("@bot:example.org", "Sov Hub")
REPLY = {"m.in_reply_to": {"event_id": "$earlier"}}


@pytest.mark.parametrize(("content", "expected"), [
    # plain text: names on word boundaries only
    ({"body": "I bought a new robot vacuum"}, False),
    ({"body": "Pass me the bottle"}, False),
    ({"body": "this is bot-like behaviour"}, False),
    ({"body": "ask @bot:matrix.org, not the other one"}, False),  # someone else with the same localpart
    ({"body": "see bot.example.com for details"}, False),
    ({"body": "write to bot@example.org"}, False),
    ({"body": "lunch?"}, False),
    ({"body": "bot, what time is it?"}, True),
    ({"body": "BOT: hello"}, True),
    ({"body": "thanks bot."}, True),
    ({"body": "hey @bot can you help"}, True),
    ({"body": "@bot:example.org: status please"}, True),
    ({"body": "Sov Hub, summarise this"}, True),
    ({"body": "what does sov hub think?"}, True),
    ({"body": "the sovhubs are here"}, False),
    # intentional mentions and pills
    ({"body": "what do you think?", "m.mentions": {"user_ids": ["@bot:example.org"]}}, True),
    ({"body": "what do you think?", "m.mentions": {"user_ids": ["@alice:example.org"]}}, False),
    ({"body": "what do you think?", "m.mentions": {}}, False),
    ({"body": "Sov Hub: hi", "format": "org.matrix.custom.html",
      "formatted_body": '<a href="https://matrix.to/#/@bot:example.org">Sov Hub</a>: hi'}, True),
    ({"body": "X: hi", "formatted_body": '<a href="https://matrix.to/#/%40bot%3Aexample.org?via=x">X</a>: hi'},
     True),
    ({"body": "X: hi", "formatted_body": "<a href='matrix:u/bot:example.org'>X</a>: hi"}, True),
    ({"body": "X: hi", "formatted_body": '<a href="https://matrix.to/#/@alice:example.org">X</a>: hi'}, False),
    # a reply's quoted fallback is not the message
    ({"body": "> <@alice:example.org> bot, are you there?\n\nno idea", "m.relates_to": REPLY}, False),
    ({"body": "> <@alice:example.org> lunch?\n\nbot: what about you", "m.relates_to": REPLY}, True),
    ({"body": "> a quote, not a reply\n\nbot: what about you"}, True),
])
def test_mention_rules(content, expected):
    assert is_mentioned(content, BOT) is expected


@pytest.mark.parametrize(("body", "question"), [
    ("bot: what time is it", "what time is it"),
    ("@bot:example.org, status", "status"),
    ("Sov Hub - hello there", "hello there"),
    ("hello bot", "hello bot"),  # only a leading name is removed
    ("bot! are you there", "are you there"),
    ("@bot:example.org: !claude why", "!claude why"),  # a command prefix behind the name survives
    ("bot /image a cat", "/image a cat"),
])
def test_strip_mention_removes_only_a_leading_name(body, question):
    assert strip_mention(body, BOT) == question


def test_pill_targets_decode_every_link_form():
    html = ('<a href="https://matrix.to/#/@a:x.org">a</a> <a href="https://matrix.to/#/%40b%3Ay.org">b</a> '
            '<a href="matrix:u/c:z.org?action=chat">c</a> <a href="https://matrix.to/#/!room:x.org">room</a>')
    assert pill_targets(html) == {"@a:x.org", "@b:y.org", "@c:z.org"}


def test_reply_fallback_is_stripped_only_at_the_start_and_only_from_replies():
    assert strip_reply_fallback("> quoted\n> more\n\nanswer") == "answer"
    assert strip_reply_fallback("answer\n> not a fallback") == "answer\n> not a fallback"
    assert message_text({"body": "> <@a:x> hi\n\nanswer", "m.relates_to": REPLY}) == "answer"
    assert message_text({"body": "> a quote\n\nmine"}) == "> a quote\n\nmine"


_letters = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6)


@settings(max_examples=400, deadline=None)
@given(before=_letters, after=_letters, glue=st.sampled_from(["", "-"]))
def test_the_name_inside_a_longer_word_never_addresses_the_bot(before, after, glue):
    for word in (f"{before}bot", f"bot{glue}{after}", f"{before}bot{after}"):
        if word != "bot":
            assert not is_mentioned({"body": f"look at this {word} here"}, BOT), word


@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=80), sep=st.sampled_from([" ", ", ", ": ", "\n", "? "]))
def test_the_name_as_a_word_always_addresses_the_bot_wherever_it_stands(text, sep):
    assert is_mentioned({"body": f"bot{sep}{text}"}, BOT)
    assert is_mentioned({"body": f"{text} @bot{sep}"}, BOT)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_characters="bB"), max_size=80))
def test_text_without_the_name_never_addresses_the_bot(text):
    content = {"body": text.replace("sov hub", "").replace("Sov Hub", "")}
    if "sov" not in text.lower():
        assert not is_mentioned(content, BOT)
