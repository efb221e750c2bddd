"""Conversation memory: per (bridge, room, thread), trimmed to the window, /new, /compact, restarts."""

from __future__ import annotations

import pytest

from hub.chat.api import ConversationKey
from hub.chat.memory import fit
from hub.llm.types import Message
from tests.chat_helpers import chat_bed

ROOM = ConversationKey("matrix", "!room:x")


@pytest.fixture
async def bed(tmp_path):
    async with chat_bed(tmp_path) as bed:
        yield bed


async def sent_messages(bed) -> list[dict]:
    return (await bed.stats(bed.anthropic))["last_request"]["messages"]


async def test_a_conversation_survives_a_hub_restart(bed):
    await bed.turn("my name is Ada")
    await bed.turn("I like owls")
    why_before = bed.hub.chat.why(ROOM)
    await bed.restart_hub()
    assert bed.hub.chat.why(ROOM) == why_before != ""
    await bed.turn("!claude what do you remember?")
    texts = [b["text"] for m in await sent_messages(bed) for b in m["content"]]
    assert texts == ["my name is Ada", "You said: my name is Ada", "I like owls", "You said: I like owls",
                     "what do you remember?"]


async def test_rooms_and_threads_keep_separate_conversations(bed):
    await bed.turn("in the room")
    await bed.turn("in a thread", thread="$root")
    await bed.turn("!claude next", thread="$root")
    texts = [b["text"] for m in await sent_messages(bed) for b in m["content"]]
    assert texts == ["in a thread", "You said: in a thread", "next"]


async def test_new_forgets_the_earlier_turns(bed):
    await bed.turn("remember this")
    await bed.hub.chat.new_conversation(ROOM)
    await bed.turn("!claude fresh start")
    assert [m["content"][0]["text"] for m in await sent_messages(bed)] == ["fresh start"]


async def test_compact_summarises_older_turns_with_the_local_model(bed):
    for text in ("first fact", "second fact", "third fact"):
        await bed.turn(text)
    local_before = await bed.local_requests()
    summary = await bed.hub.chat.compact(ROOM)
    assert "first fact" in summary and "second fact" in summary
    assert await bed.local_requests() == local_before + 1 and await bed.cloud_requests() == 0
    await bed.turn("!claude and now?")
    sent = (await bed.stats(bed.anthropic))["last_request"]
    system = sent["system"][0]["text"]
    assert "Summary of the earlier conversation" in system and "first fact" in system
    texts = [b["text"] for m in sent["messages"] for b in m["content"]]
    assert texts == ["third fact", "You said: third fact", "and now?"]


def test_fit_keeps_the_system_prompt_and_the_newest_turns():
    history = []
    for i in range(50):
        history += [Message("user", f"question {i} " + "x" * 400), Message("assistant", f"answer {i} " + "y" * 400)]
    out = fit("SYSTEM", None, history, "new question", budget_tokens=1200)
    assert out[0].role == "system" and out[0].content == "SYSTEM"
    assert out[-1].content == "new question" and out[1].role == "user"
    assert out[-2].content.startswith("answer 49") and len(out) < 20
    assert sum(len(m.content) for m in out) // 4 <= 1200


def test_fit_with_nothing_that_fits_still_sends_the_new_message():
    out = fit("S", "a summary", [Message("user", "z" * 100000), Message("assistant", "ok")], "hi", 100)
    assert [m.role for m in out] == ["system", "user"] and "a summary" in out[0].content


async def test_concurrent_turns_in_many_rooms_are_all_stored(bed):
    import asyncio

    await asyncio.gather(*(bed.turn(f"hello {i}", room=f"!r{i}:x") for i in range(6)),
                         *(bed.turn(f"again {i}", room="!same:x", thread=f"$t{i}") for i in range(4)))
    await bed.hub.chat.settled()
    rows = await bed.hub.store.db.execute_fetchall("SELECT COUNT(*) FROM messages")
    convs = await bed.hub.store.db.execute_fetchall("SELECT COUNT(*) FROM conversations WHERE active=1")
    assert rows[0][0] == 20 and convs[0][0] == 10
