"""Streaming replies on a real Synapse: one message plus edits, throttled, split cleanly when long."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from bridges.matrix.client import MatrixConnection
from bridges.matrix.format import relation, render_html, split_text
from bridges.matrix.sink import MatrixReplySink
from hub.config.matrix import MatrixConfig
from tests.testbed.matrix_user import MatrixUserClient


def test_split_text_breaks_at_paragraphs_and_keeps_code_fences_balanced():
    text = ("para one " * 30).strip() + "\n\n```\n" + "code line\n" * 40 + "```\n\nend"
    parts = split_text(text, 300)
    assert all(len(p) <= 310 for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts)
    assert "".join(parts).replace("```", "").replace("\n", "").replace(" ", "") == \
        text.replace("```", "").replace("\n", "").replace(" ", "")


def test_markdown_is_rendered_and_raw_html_escaped():
    html = render_html("**bold** <img src=x onerror=alert(1)> [x](javascript:alert(1))")
    assert "<strong>bold</strong>" in html and "<img" not in html and 'href="javascript' not in html


@pytest.fixture
async def pair(synapse, tmp_path):
    bot = synapse.register(f"sink{uuid.uuid4().hex[:8]}")
    human_user = synapse.register(f"reader{uuid.uuid4().hex[:8]}")
    conn = MatrixConnection(MatrixConfig(homeserver=synapse.url, user_id=bot.user_id, password=bot.password),
                            tmp_path / "bot")
    await conn.login()
    human = await MatrixUserClient(synapse.url, human_user, tmp_path / "human").start()
    room = await human.create_room([bot.user_id], name="stream")
    await conn.client.join(room)
    await conn.sync(None, 0, full_state=True)
    await human.wait_for(lambda s: s.room_id == room and s.type == "m.room.member" and s.event.state_key == bot.user_id
                         and s.event.membership == "join")
    yield conn, human, room, bot
    await human.close()
    await conn.close()


async def test_streamed_answer_is_one_message_plus_throttled_edits(pair):
    conn, human, room, bot = pair
    question = await human.send(room, "tell me a story")
    sink = MatrixReplySink(conn, room, relation(None, question), f"t.{question}", edit_interval_s=0.3)
    await sink.start()
    chunks = [f"word{i} " for i in range(60)]
    started = time.monotonic()
    for chunk in chunks:
        await sink.delta(chunk)
        await asyncio.sleep(0.02)
    elapsed = time.monotonic() - started
    await sink.finish("".join(chunks))
    final = await human.wait_for(lambda s: s.is_edit and s.sender == bot.user_id
                                 and s.content["m.new_content"]["body"] == "".join(chunks))
    originals = human.from_user(bot.user_id, room)
    edits = human.from_user(bot.user_id, room, edits=True)
    assert len(originals) == 1 and originals[0].content["m.relates_to"]["m.in_reply_to"]["event_id"] == question
    assert all(e.relates["event_id"] == originals[0].event_id for e in edits)
    assert final.content["body"].startswith("* ")
    # At most one edit per interval while streaming, plus the final one; never one per chunk.
    assert 2 <= len(edits) <= elapsed / 0.3 + 2 < len(chunks)


async def test_long_answer_continues_in_a_second_message(pair):
    conn, human, room, bot = pair
    question = await human.send(room, "a long one")
    sink = MatrixReplySink(conn, room, relation(None, question), f"t.{question}", edit_interval_s=0.1,
                           max_chars=500)
    await sink.start()
    text = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum " * 8 for i in range(12))
    for i in range(0, len(text), 200):
        await sink.delta(text[i:i + 200])
    await sink.finish(text)
    await human.wait_for(lambda s: s.sender == bot.user_id and "Paragraph 11" in s.content.get("body", ""))
    originals = human.from_user(bot.user_id, room)
    assert len(originals) == len(split_text(text, 500)) >= 2
    assert all(len(m.content["body"]) <= 510 for m in originals)


async def test_replaying_an_answer_after_a_crash_does_not_post_twice(pair):
    """Same question event -> same transaction ids -> the homeserver returns the first message."""
    conn, human, room, bot = pair
    question = await human.send(room, "are you there?")
    first = MatrixReplySink(conn, room, relation(None, question), f"sovhub.{question}")
    await first.delta("Yes, I")  # ...and the bot dies here
    second = MatrixReplySink(conn, room, relation(None, question), f"sovhub.{question}")
    await second.delta("Yes, I am")
    await second.finish("Yes, I am here.")
    assert first.message_ids == second.message_ids
    await human.wait_for(lambda s: s.is_edit and s.content["m.new_content"]["body"] == "Yes, I am here.")
    await human.settle(0.3)
    assert len(human.from_user(bot.user_id, room)) == 1


async def test_notice_shows_until_the_answer_replaces_it(pair):
    conn, human, room, bot = pair
    question = await human.send(room, "draw later")
    sink = MatrixReplySink(conn, room, relation(None, question), f"t.{question}", edit_interval_s=0.05)
    await sink.notice("queued behind podcast, ETA 3 min")
    await sink.delta("Here it is")
    await sink.finish("Here it is.")
    first = await human.wait_for(lambda s: s.sender == bot.user_id and not s.is_edit and s.type == "m.room.message")
    assert "queued behind podcast" in first.content["body"]
    await human.wait_for(lambda s: s.is_edit and s.content["m.new_content"]["body"] == "Here it is.")
