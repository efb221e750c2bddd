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
from tests.waiting import wait_until


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
        await asyncio.sleep(0.02)  # the behaviour under test: a model's pace, 50 tokens a second
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


async def test_replaying_an_answer_after_a_crash_does_not_post_twice_and_ends_complete(pair):
    """Same question event -> same message id; the replay's complete edit is newer than every old edit."""
    conn, human, room, bot = pair
    question = await human.send(room, "are you there?")
    first = MatrixReplySink(conn, room, relation(None, question), f"sovhub.{question}", edit_interval_s=0.05)
    await first.delta("Yes, I")
    await _until(lambda: first.message_ids)
    await first.delta(" am")
    await _until(lambda: first.edits)  # ...and the bot dies here, its final edit never sent
    second = MatrixReplySink(conn, room, relation(None, question), f"sovhub.{question}", edit_interval_s=0.05,
                             replay=True)
    await second.start()
    await second.delta("Yes, I am")
    await second.finish("Yes, I am here.")
    assert first.message_ids == second.message_ids
    await human.wait_for(lambda s: s.is_edit and s.content["m.new_content"]["body"] == "Yes, I am here.")
    await human.settle(0.3)
    assert len(human.from_user(bot.user_id, room)) == 1
    assert newest_body(human, bot.user_id, room) == "Yes, I am here."


async def _until(cond, timeout: float = 10.0) -> None:
    await wait_until(cond, timeout=timeout, interval=0.005, what="the sink's message or edit")


def newest_body(human, bot_id: str, room: str) -> str:
    """What a client shows: the newest `m.replace` by (origin_server_ts, event_id), else the original."""
    original = human.from_user(bot_id, room)[0]
    edits = [e for e in human.from_user(bot_id, room, edits=True) if e.relates["event_id"] == original.event_id]
    if not edits:
        return original.content["body"]
    newest = max(edits, key=lambda e: (e.source["origin_server_ts"], e.event_id))
    return newest.content["m.new_content"]["body"]


async def test_an_answer_ready_within_the_first_interval_is_one_event(pair):
    conn, human, room, bot = pair
    question = await human.send(room, "quick one")
    sink = MatrixReplySink(conn, room, relation(None, question), f"t.{question}", edit_interval_s=0.5,
                           msgtype="m.text", mentions=[human.client.user_id])
    await sink.start()
    for piece in ("You", " said", ": quick one"):
        await sink.delta(piece)
    await sink.finish("You said: quick one")
    reply = await human.wait_for(lambda s: s.sender == bot.user_id and s.type == "m.room.message")
    await human.settle(0.8)  # longer than the interval: no late flush or edit follows
    assert reply.content["body"] == "You said: quick one" and reply.content["msgtype"] == "m.text"
    assert reply.content["m.mentions"] == {"user_ids": [human.client.user_id]}
    assert human.from_user(bot.user_id, room, edits=True) == [] and len(human.from_user(bot.user_id, room)) == 1
    assert sink.edits == 0


async def test_first_event_of_a_long_answer_carries_the_first_flush_not_one_token(pair):
    conn, human, room, bot = pair
    question = await human.send(room, "slow one")
    sink = MatrixReplySink(conn, room, relation(None, question), f"t.{question}", edit_interval_s=0.3)
    await sink.start()
    words = [f"w{i} " for i in range(30)]
    for w in words:
        await sink.delta(w)
        await asyncio.sleep(0.02)  # the behaviour under test: a model's pace, 50 tokens a second
    await sink.finish("".join(words))
    first = await human.wait_for(lambda s: s.sender == bot.user_id and not s.is_edit and s.type == "m.room.message")
    assert len(first.content["body"].split()) >= 5, first.content["body"]  # ~0.3 s of text, not "w0"


@pytest.fixture
async def proxied(synapse, tmp_path):
    from tests.testbed.delay_proxy import DelayProxy

    proxy = await DelayProxy(synapse.url).start()
    bot = synapse.register(f"psink{uuid.uuid4().hex[:8]}")
    human_user = synapse.register(f"preader{uuid.uuid4().hex[:8]}")
    conn = MatrixConnection(MatrixConfig(homeserver=proxy.url, user_id=bot.user_id, password=bot.password),
                            tmp_path / "bot")
    await conn.login()
    human = await MatrixUserClient(synapse.url, human_user, tmp_path / "human").start()
    room = await human.create_room([bot.user_id], name="proxied")
    await conn.client.join(room)
    await conn.sync(None, 0, full_state=True)
    await human.wait_for(lambda s: s.room_id == room and s.type == "m.room.member" and s.event.state_key == bot.user_id
                         and s.event.membership == "join")
    yield conn, human, room, bot, proxy
    await human.close()
    await conn.close()
    await proxy.close()


async def test_a_flush_on_its_way_when_the_answer_ends_is_awaited_not_duplicated(proxied):
    """The edit a timer is sending carries the whole answer: finish must not send it a second time."""
    conn, human, room, bot, proxy = proxied
    question = await human.send(room, "race")
    sink = MatrixReplySink(conn, room, relation(None, question), f"sovhub.{question}", edit_interval_s=0.1)
    await sink.delta("Hello there.")
    await _until(lambda: sink.message_ids)
    hold = proxy.hold(lambda method, path, body: method == "PUT" and path.endswith(f"{question}.p0.e1"))
    await sink.delta(" Bye.")
    await asyncio.wait_for(hold.arrived.wait(), 10)  # the edit is at the homeserver, its reply held
    finishing = asyncio.create_task(sink.finish("Hello there. Bye."))
    await asyncio.sleep(0.2)  # the observation window of a negative claim: finish does not return early
    assert not finishing.done()  # waits for the edit on its way instead of cancelling it
    hold.release()
    await finishing
    await human.wait_for(lambda s: s.is_edit and s.content["m.new_content"]["body"] == "Hello there. Bye.")
    await human.settle(0.5)
    assert len(human.from_user(bot.user_id, room, edits=True)) == 1
    sends = [p for m, p in proxy.log if m == "PUT" and "/send/" in p]
    assert [p.rsplit("/", 1)[1] for p in sends] == [f"sovhub.{question}.p0", f"sovhub.{question}.p0.e1"]


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
