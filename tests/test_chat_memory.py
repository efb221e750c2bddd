"""Conversation memory: per (bridge, room, thread), trimmed to the window, /new, /compact, restarts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.chat.api import ConversationKey
from hub.chat.memory import Memory, fit, newest
from hub.llm.types import Message
from hub.store import Store
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


roles = st.sampled_from(["user", "assistant"])
histories = st.lists(st.tuples(roles, st.text(max_size=300)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(histories, st.text(max_size=200), st.text(max_size=200), st.integers(0, 2000))
def test_reading_only_the_newest_rows_that_can_fit_trims_to_the_same_prompt(rows, system, text, budget):
    full = [Message(r, c) for r, c in rows]
    read = [Message(r, c) for r, c in newest(list(reversed(rows)), budget)]
    assert fit(system, None, read, text, budget) == fit(system, None, full, text, budget)


async def test_a_turn_reads_the_newest_messages_from_sqlite_as_the_whole_history_would_trim(tmp_path):
    store = await Store.open(tmp_path / "hub.db")
    try:
        memory = Memory(store)
        for i in range(60):
            await memory.append_turn(ROOM, f"question {i} " + "q" * (i * 7 % 90), f"answer {i} " + "a" * (i * 13 % 200),
                                     route="local", output_tokens=5, context_id=f"c{i}")
        other = Memory(store)  # a fresh process: nothing cached
        summary, everything = await other.load(ROOM)
        assert len(everything) == 120 and everything[0].content.startswith("question 0")
        for budget in (0, 50, 333, 1200, 100000):
            _, part = await other.load(ROOM, budget)
            assert part == everything[len(everything) - len(part):]
            assert fit("S", summary, part, "new", budget) == fit("S", summary, everything, "new", budget)
    finally:
        await store.close()
