"""Conversations through the bridge on a real Synapse, answered by the chat service over the SGLang stand-in."""

from __future__ import annotations

import importlib.util
import json
import uuid

import httpx
import pytest

from bridges.matrix.bridge import MatrixBridge
from hub.config.model import HubConfig
from hub.core import Hub
from hub.sim.serve import serve_app
from hub.sim.sglang import create_app
from tests.helpers_skills import test_registry
from tests.testbed.matrix_user import MatrixUserClient
from tests.waiting import wait_until

HAVE_CHAT = importlib.util.find_spec("hub.chat") is not None and \
    importlib.util.find_spec("hub.chat.component") is not None


class StreamingChat:
    """Used only while the hub has no chat service: streams the SGLang stand-in into the sink."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def turn(self, req, sink):
        await sink.start()
        full = ""
        async with httpx.AsyncClient(timeout=60) as http, http.stream(
                "POST", f"{self.base_url}/v1/chat/completions",
                json={"model": "mistral-small-4", "stream": True,
                      "messages": [{"role": "user", "content": req.text}]}) as resp:
            async for line in resp.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                choices = json.loads(line[6:]).get("choices") or []
                piece = (choices[0].get("delta") or {}).get("content") if choices else None
                if piece:
                    full += piece
                    await sink.delta(piece)
        await sink.finish(full)


def _uid() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
async def llm():
    async with serve_app(create_app(tokens_per_s=40)) as url:
        yield url


@pytest.fixture
async def convo(synapse, tmp_path, llm):
    bot = synapse.register(f"cbot{_uid()}")
    person = synapse.register(f"person{_uid()}")
    friend = synapse.register(f"friend{_uid()}")
    config = HubConfig.model_validate({
        "storage": {"data_dir": str(tmp_path / "data")},
        "matrix": {"enabled": True, "homeserver": synapse.url, "user_id": bot.user_id, "password": bot.password,
                   "allowed_users": [person.user_id, friend.user_id], "owners": [person.user_id],
                   "edit_interval_s": 0.25, "sync_timeout_ms": 1000},
        "llm": {"local": {"base_url": f"{llm}/v1"}, "cloud": {"enabled": False}},
        "routing": {"default_policy": "local"},
    })
    hub = await Hub.start(config, skills=test_registry(),
                          components=("hub.chat.component",) if HAVE_CHAT else ())
    if not HAVE_CHAT:
        hub.chat = StreamingChat(llm)
    bridge = MatrixBridge(hub)
    await bridge.start()
    await bridge.synced.wait()
    human = await MatrixUserClient(synapse.url, person, tmp_path / "human").start()
    yield bridge, human, bot, friend
    await human.close()
    await bridge.stop()
    await hub.stop()


def _answer_to(bot, text):
    return lambda s: s.sender == bot.user_id and (
        (s.is_edit and s.content["m.new_content"]["body"] == text) or (not s.is_edit and s.content.get("body") == text))


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
async def test_conversation_in_a_dm(convo, encrypted):
    bridge, human, bot, _ = convo
    room = await human.create_room([bot.user_id], name="dm", encrypted=encrypted, wait_join=bot.user_id)
    asked = await human.send(room, "hello there")
    await human.wait_for(_answer_to(bot, "You said: hello there"))
    first = human.from_user(bot.user_id, room)[0]
    assert first.content["msgtype"] == "m.text"  # notifies the person who asked
    assert first.content["body"] == "You said: hello there"  # ready within the first interval: one event
    await human.settle(0.5)
    assert human.from_user(bot.user_id, room, edits=True) == []
    assert first.relates["m.in_reply_to"]["event_id"] == asked
    if encrypted:
        assert type(first.event).__name__ != "MegolmEvent" and bridge.metrics["undecryptable"] == 0
    await human.send(room, "and again")
    await human.wait_for(_answer_to(bot, "You said: and again"))


async def test_streamed_answer_is_one_message_plus_edits(convo):
    _bridge, human, bot, _ = convo
    room = await human.create_room([bot.user_id], name="stream", wait_join=bot.user_id)
    await human.send(room, "[[tokens 60]]")
    await human.wait_for(lambda s: s.sender == bot.user_id and s.is_edit, timeout=30)
    # wait for the stream to end: no new edits for a second
    count = -1
    while count != len(human.from_user(bot.user_id, room, edits=True)):
        count = len(human.from_user(bot.user_id, room, edits=True))
        await human.settle(1.0)
    assert len(human.from_user(bot.user_id, room)) == 1
    assert 1 <= count < 60


async def test_group_room_thread_reply_stays_in_thread_and_follow_ups_are_answered(convo):
    _bridge, human, bot, friend = convo
    room = await human.create_room([bot.user_id, friend.user_id], name="group", wait_join=bot.user_id)
    root = await human.send(room, "thread root for the team")
    await human.send(room, f"{bot.user_id}: what about this?", thread_root=root)
    answer = await human.wait_for(lambda s: s.sender == bot.user_id and not s.is_edit and s.type == "m.room.message")
    assert answer.relates["rel_type"] == "m.thread" and answer.relates["event_id"] == root
    await human.wait_for(_answer_to(bot, f"You said: [The thread started with {human.client.user_id} writing: "
                                         "thread root for the team]\n\nwhat about this?"))
    # Inside a thread the bot takes part in, no mention is needed.
    await human.send(room, "and a follow-up", thread_root=root)
    follow = await human.wait_for(_answer_to(bot, "You said: and a follow-up"))
    originals = human.from_user(bot.user_id, room)
    assert all(m.relates.get("rel_type") == "m.thread" and m.relates["event_id"] == root for m in originals)
    assert follow.relates["event_id"] in {m.event_id for m in originals} or not follow.is_edit
    # Plain chatter in the main timeline is not for the bot.
    await human.send(room, "lunch?")
    await human.settle(1.0)
    assert len(human.from_user(bot.user_id, room)) == 2


async def test_reply_to_the_bot_is_answered_in_a_group_room(convo):
    _bridge, human, bot, friend = convo
    room = await human.create_room([bot.user_id, friend.user_id], name="replies", wait_join=bot.user_id)
    await human.send(room, "/help new")
    help_msg = await human.wait_for(lambda s: s.sender == bot.user_id and s.type == "m.room.message")
    await human.send(room, "thanks, and then?", reply_to=help_msg.event_id)
    await human.wait_for(_answer_to(bot, "You said: thanks, and then?"))


async def test_restart_mid_answer_and_messages_while_down_are_answered_exactly_once(synapse, tmp_path):
    """In-process variant of the kill -9 test (tests/test_matrix_restart.py kills the real process)."""
    bot = synapse.register(f"rbot{_uid()}")
    person = synapse.register(f"rperson{_uid()}")
    async with serve_app(create_app(tokens_per_s=25)) as url:
        config = HubConfig.model_validate({
            "storage": {"data_dir": str(tmp_path / "data")},
            "matrix": {"enabled": True, "homeserver": synapse.url, "user_id": bot.user_id,
                       "password": bot.password, "allowed_users": [person.user_id], "edit_interval_s": 0.2,
                       "sync_timeout_ms": 1000},
            "llm": {"local": {"base_url": f"{url}/v1"}, "cloud": {"enabled": False}},
            "routing": {"default_policy": "local"},
        })

        async def start():
            hub = await Hub.start(config, skills=test_registry(),
                                  components=("hub.chat.component",) if HAVE_CHAT else ())
            if not HAVE_CHAT:
                hub.chat = StreamingChat(url)
            bridge = MatrixBridge(hub)
            await bridge.start()
            await bridge.synced.wait()
            return hub, bridge

        human = await MatrixUserClient(synapse.url, person, tmp_path / "human").start()
        hub, bridge = await start()
        try:
            # Encrypted: the bot's E2EE store (account, sessions) must survive the restart too.
            room = await human.create_room([bot.user_id], name="restart", encrypted=True, wait_join=bot.user_id)
            first = await human.send(room, "first [[tokens 30]]")
            await human.wait_for(lambda s: s.sender == bot.user_id and s.type == "m.room.message")
            await bridge.stop()  # mid-answer: the question stays pending
            assert [e.event_id for e in await bridge.inbox.pending()] == [first]
            await hub.stop()
            second = await human.send(room, "second")
            third = await human.send(room, "third")
            hub, bridge = await start()
            await human.wait_for(_answer_to(bot, "You said: second"))
            await human.wait_for(_answer_to(bot, "You said: third"))
            await human.settle(1.5)
            originals = human.from_user(bot.user_id, room)
            replied = sorted(m.relates["m.in_reply_to"]["event_id"] for m in originals)
            assert replied == sorted([first, second, third])
            async def settled() -> bool:  # the last reply is seen just before its row is marked done
                return "pending" not in await bridge.inbox.counts()

            await wait_until(settled, what="the inbox with nothing pending")
            assert (await bridge.inbox.counts()) == {"done": 3}
        finally:
            await human.close()
            await bridge.stop()
            await hub.stop()


async def _set_display_name(synapse, user, name: str) -> None:
    async with httpx.AsyncClient(base_url=synapse.url,
                                 headers={"Authorization": f"Bearer {user.access_token}"}) as http:
        resp = await http.put(f"/_matrix/client/v3/profile/{user.user_id}/displayname", json={"displayname": name})
        assert resp.status_code == 200, resp.text


async def test_group_room_answers_by_name_not_by_substring_and_a_thread_answer_sees_its_root(convo, synapse):
    bridge, human, bot, friend = convo
    await _set_display_name(synapse, bot, "Bot")
    room = await human.create_room([bot.user_id, friend.user_id], name="names", wait_join=bot.user_id)
    await human.send(room, "I bought a new robot vacuum")
    await human.send(room, "Pass me the bottle")
    root = await human.send(room, "Which port does the status page use?")
    await human.send(room, "Bot, what do you think?", thread_root=root)
    answer = await human.wait_for(lambda s: s.sender == bot.user_id and "what do you think?" in (
        s.content.get("m.new_content") or s.content).get("body", "") and "status page" in (
        s.content.get("m.new_content") or s.content).get("body", ""), timeout=30)
    body = (answer.content.get("m.new_content") or answer.content)["body"]
    assert f"{human.client.user_id} writing: Which port does the status page use?" in body
    assert body.endswith("\n\nwhat do you think?")  # the name is not part of the question
    # A follow-up in the same thread: the root is in the conversation already, not quoted again.
    await human.send(room, "and why?", thread_root=root)
    await human.wait_for(_answer_to(bot, "You said: and why?"))
    originals = human.from_user(bot.user_id, room)
    assert len(originals) == 2  # the vacuum and the bottle were not for the bot
    assert all(m.relates["rel_type"] == "m.thread" and m.relates["event_id"] == root for m in originals)
    assert bridge.metrics["skipped"] >= 2


async def test_a_question_replying_to_someone_else_carries_the_replied_to_message(convo, synapse):
    _bridge, human, bot, friend = convo
    room = await human.create_room([bot.user_id, friend.user_id], name="quotes", wait_join=bot.user_id)
    earlier = await human.send(room, "The deploy is on Friday.")
    await human.send(room, "is that realistic?", reply_to=earlier, mention=bot.user_id)
    await human.wait_for(_answer_to(
        bot, f"You said: [In reply to {human.client.user_id}: The deploy is on Friday.]\n\nis that realistic?"))


async def _send_raw(human, room: str, content: dict) -> str:
    from nio import RoomSendResponse

    resp = await human.client.room_send(room, "m.room.message", content, ignore_unverified_devices=True)
    assert isinstance(resp, RoomSendResponse), resp
    return resp.event_id


async def test_pills_and_m_mentions_on_real_events_address_the_bot_and_mentions_of_others_do_not(convo):
    """The forms real clients send: an `m.mentions` list, a matrix.to pill (percent-encoded) and a
    `matrix:u/` pill, each with a body that never names the bot; a pill to a friend is not for it."""
    bridge, human, bot, friend = convo
    room = await human.create_room([bot.user_id, friend.user_id], name="pills", wait_join=bot.user_id)
    encoded = bot.user_id.replace("@", "%40").replace(":", "%3A")
    asked = {
        "pill": await _send_raw(human, room, {
            "msgtype": "m.text", "body": "the helper: first one", "format": "org.matrix.custom.html",
            "formatted_body": f'<a href="https://matrix.to/#/{encoded}">the helper</a>: first one'}),
        "uri": await _send_raw(human, room, {
            "msgtype": "m.text", "body": "assistant second one", "format": "org.matrix.custom.html",
            "formatted_body": f"<a href='matrix:u/{bot.user_id[1:]}?action=chat'>assistant</a> second one"}),
        "mentions": await _send_raw(human, room, {"msgtype": "m.text", "body": "third one",
                                                  "m.mentions": {"user_ids": [bot.user_id]}}),
    }
    await _send_raw(human, room, {
        "msgtype": "m.text", "body": "pal: not for the bot", "format": "org.matrix.custom.html",
        "formatted_body": f'<a href="https://matrix.to/#/{friend.user_id}">pal</a>: not for the bot',
        "m.mentions": {"user_ids": [friend.user_id]}})
    for event_id in asked.values():
        await human.wait_for(lambda s, e=event_id: s.sender == bot.user_id and not s.is_edit
                             and s.relates.get("m.in_reply_to", {}).get("event_id") == e, timeout=30)
    await human.wait_for(_answer_to(bot, "You said: third one"))
    await human.settle(1.0)
    replies = human.from_user(bot.user_id, room)
    assert sorted(m.relates["m.in_reply_to"]["event_id"] for m in replies) == sorted(asked.values())  # not the friend's
    # A direct question in a group room is answered so that it notifies the person who asked.
    assert all(m.content["msgtype"] == "m.text" and m.content["m.mentions"] == {"user_ids": [human.client.user_id]}
               for m in replies)
    assert bridge.metrics["skipped"] >= 1


async def test_why_speaks_of_this_conversation_after_new_and_a_quiet_room_gets_notices(convo):
    _bridge, human, bot, _ = convo
    room = await human.create_room([bot.user_id], name="why", wait_join=bot.user_id)

    async def command(text: str) -> str:
        mark = len(human.seen)
        await human.send(room, text)
        reply = await human.wait_for(lambda s: s.sender == bot.user_id and s.type == "m.room.message"
                                     and not s.is_edit, after=mark)
        return reply.content["body"]

    await human.send(room, "hello")
    answer = await human.wait_for(_answer_to(bot, "You said: hello"))
    assert answer.content["msgtype"] == "m.text"
    why = await command("/why")
    assert why.startswith("local model") and "No turn" not in why, why
    assert (await command("/new")).startswith("New conversation started")
    assert await command("/why") == "No turn has been routed here yet."  # not the previous conversation's
    assert "notify = **off**" in await command("/settings notify off")
    mark = len(human.seen)
    await human.send(room, "quietly")
    quiet = await human.wait_for(_answer_to(bot, "You said: quietly"), after=mark)
    assert quiet.content["msgtype"] == "m.notice" and "m.mentions" not in quiet.content  # push rules skip it


async def test_an_encrypted_thread_root_the_inbox_never_held_is_fetched_and_decrypted_for_the_turn(convo):
    """The root is a notice (never a question, so not in the inbox): the bridge reads it from the
    homeserver and decrypts it, so the first answer in the thread still sees what is discussed."""
    bridge, human, bot, friend = convo
    room = await human.create_room([bot.user_id, friend.user_id], name="secret-thread", encrypted=True,
                                   wait_join=bot.user_id)
    root = await _send_raw(human, room, {"msgtype": "m.notice", "body": "Build 41 failed on the ARM runner"})
    await human.send(room, f"{bot.user_id} why?", thread_root=root)
    await human.wait_for(_answer_to(bot, f"You said: [The thread started with {human.client.user_id} writing: "
                                         "Build 41 failed on the ARM runner]\n\nwhy?"), timeout=30)
    assert bridge.metrics["undecryptable"] == 0


async def test_a_failover_mid_answer_reads_as_words_and_ends_with_the_complete_answer(synapse, tmp_path):
    """The local model's stream breaks mid-answer: the room reads one plain sentence about it (no
    exception chain) and the one message ends as Claude's complete answer."""
    from hub.sim.anthropic import create_app as anthropic_app

    bot = synapse.register(f"fbot{_uid()}")
    person = synapse.register(f"fperson{_uid()}")
    async with serve_app(create_app(tokens_per_s=40)) as local, serve_app(anthropic_app()) as cloud:
        config = HubConfig.model_validate({
            "storage": {"data_dir": str(tmp_path / "data")},
            "matrix": {"enabled": True, "homeserver": synapse.url, "user_id": bot.user_id,
                       "password": bot.password, "allowed_users": [person.user_id], "edit_interval_s": 0.25,
                       "sync_timeout_ms": 1000},
            "llm": {"local": {"base_url": f"{local}/v1"}, "cloud": {"base_url": cloud, "api_key": "sk-test"}},
            "routing": {"default_policy": "auto"},
        })
        hub = await Hub.start(config, skills=test_registry(), components=("hub.chat.component",))
        bridge = MatrixBridge(hub)
        human = None
        try:
            await bridge.start()
            await bridge.synced.wait()
            human = await MatrixUserClient(synapse.url, person, tmp_path / "human").start()
            room = await human.create_room([bot.user_id], name="failover", wait_join=bot.user_id)
            async with httpx.AsyncClient() as http:
                resp = await http.post(f"{local}/_sim/faults",
                                       json={"add": [{"kind": "disconnect", "after_tokens": 2}]})
                assert resp.status_code == 200, resp.text
            asked = await human.send(room, "one two three")
            await human.wait_for(_answer_to(bot, "You said: one two three"), timeout=30)
            await human.settle(0.5)
            said = [(s.content.get("m.new_content") or s.content).get("body", "")
                    for s in human.seen if s.sender == bot.user_id and s.type == "m.room.message"]
            notes = [t.split("\n\n")[-1].strip("_") for t in said]  # the note follows what had streamed
            assert any(n.startswith("The local model failed (") and n.endswith("; answering with Claude instead.")
                       for n in notes), said
            assert not [t for t in said if "Error" in t or "Traceback" in t or "the Claude" in t], said
            originals = human.from_user(bot.user_id, room)
            assert [m.relates["m.in_reply_to"]["event_id"] for m in originals] == [asked]
            edits = human.from_user(bot.user_id, room, edits=True)
            newest = max(edits, key=lambda e: (e.source["origin_server_ts"], e.event_id)) if edits else originals[0]
            assert (newest.content.get("m.new_content") or newest.content)["body"] == "You said: one two three"
        finally:
            if human is not None:
                await human.close()
            await bridge.stop()
            await hub.stop()
