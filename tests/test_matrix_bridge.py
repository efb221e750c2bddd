"""The Matrix bridge on a real Synapse: commands, threads, access, approvals, media, first start."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from nio import DownloadResponse
from pydantic import BaseModel, Field

from bridges.matrix.bridge import MatrixBridge
from hub.config.model import HubConfig
from hub.core import Hub
from hub.jobs import SkillRun
from hub.registry import Permission, skill
from tests.helpers_skills import test_registry
from tests.testbed.matrix_user import MatrixUserClient
from tests.waiting import wait_until


class PaintParams(BaseModel):
    prompt: str = Field(description="what to paint")
    size: str = "64x64"


class PaintResult(BaseModel):
    path: str


PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


@skill(name="paint", description="Paint a tiny picture (test)", params=PaintParams, result=PaintResult,
       long_running=True, command="image")
async def paint(run: SkillRun, params: PaintParams) -> PaintResult:
    await run.progress(1, 2, "painting")
    out = run.artifacts_dir / "paint.png"
    out.write_bytes(PNG_1x1)
    await run.progress(2, 2, "done")
    return PaintResult(path=str(out))


class Nothing(BaseModel):
    pass


class Restarted(BaseModel):
    restarted: bool


RESTARTS: list[str] = []


@skill(name="restart_service", description="Restart a service (destructive test skill)", params=Nothing,
       result=Restarted, permission=Permission.destructive, command="restart-mcp")
async def restart_service(run: SkillRun, params: Nothing) -> Restarted:
    RESTARTS.append(run.job_id)
    return Restarted(restarted=True)


def _uid() -> str:
    return uuid.uuid4().hex[:8]


class BotRig:
    def __init__(self, synapse, tmp_path) -> None:
        self.synapse = synapse
        self.tmp = tmp_path
        self.bot = synapse.register(f"bot{_uid()}")
        self.owner = synapse.register(f"owner{_uid()}")
        self.guest = synapse.register(f"guest{_uid()}")
        self.stranger = synapse.register(f"stranger{_uid()}")
        self.hub: Hub | None = None
        self.bridge: MatrixBridge | None = None
        self.users: list[MatrixUserClient] = []

    def config(self, **matrix) -> HubConfig:
        return HubConfig.model_validate({
            "storage": {"data_dir": str(self.tmp / "data")},
            "matrix": {"enabled": True, "homeserver": self.synapse.url, "user_id": self.bot.user_id,
                       "password": self.bot.password, "allowed_users": [self.guest.user_id],
                       "owners": [self.owner.user_id], "edit_interval_s": 0.3, "approval_timeout_s": 20,
                       "sync_timeout_ms": 1000, **matrix},
        })

    async def start_bot(self, **matrix) -> MatrixBridge:
        registry = test_registry()
        registry.register(paint)
        registry.register(restart_service)
        self.hub = await Hub.start(self.config(**matrix), skills=registry, components=())
        self.bridge = MatrixBridge(self.hub)
        await self.bridge.start()
        await self.bridge.synced.wait()
        return self.bridge

    async def user(self, who) -> MatrixUserClient:
        client = await MatrixUserClient(self.synapse.url, who, self.tmp / f"store-{who.localpart}").start()
        self.users.append(client)
        return client

    async def close(self) -> None:
        if self.bridge:
            await self.bridge.stop()
        if self.hub:
            await self.hub.stop()
        for u in self.users:
            await u.close()


@pytest.fixture
async def rig(synapse, tmp_path):
    r = BotRig(synapse, tmp_path)
    yield r
    await r.close()


async def _settled_counts(bridge, timeout: float = 5.0) -> dict[str, int]:
    """Inbox counts once nothing is pending (the reply is seen just before its row is marked done)."""
    async def settled() -> list[dict[str, int]] | None:
        counts = await bridge.inbox.counts()
        return [counts] if "pending" not in counts else None

    [counts] = await wait_until(settled, timeout=timeout, what="the inbox with nothing pending")
    return counts


def _bodies(items) -> list[str]:
    return [s.content.get("body", "") for s in items]


async def test_command_in_group_room_answers_as_text_that_notifies_the_asker_with_reply(rig):
    await rig.start_bot()
    owner = await rig.user(rig.owner)
    room = await owner.create_room([rig.bot.user_id, rig.guest.user_id], name="group",
                                   wait_join=rig.bot.user_id)
    mark = len(owner.seen)
    asked = await owner.send(room, "/help")
    reply = await owner.wait_for(lambda s: s.sender == rig.bot.user_id and s.type == "m.room.message", after=mark)
    assert reply.content["msgtype"] == "m.text"
    assert reply.content["m.mentions"] == {"user_ids": [rig.owner.user_id]}
    assert "/status" in reply.content["body"] and "/image <prompt>" in reply.content["body"]
    assert "<code>" in reply.content["formatted_body"]
    assert reply.relates["m.in_reply_to"]["event_id"] == asked
    await owner.send(room, "/settings notify off")  # a room that wants quiet answers
    await owner.wait_for(lambda s: s.sender == rig.bot.user_id and "notify = **off**" in s.content.get("body", ""))
    mark = len(owner.seen)
    await owner.send(room, "/help")
    reply = await owner.wait_for(lambda s: s.sender == rig.bot.user_id and s.type == "m.room.message", after=mark)
    assert reply.content["msgtype"] == "m.notice" and "m.mentions" not in reply.content


async def test_commands_answer_inside_the_thread(rig):
    await rig.start_bot()
    owner = await rig.user(rig.owner)
    room = await owner.create_room([rig.bot.user_id, rig.guest.user_id], name="threads",
                                   wait_join=rig.bot.user_id)
    root = await owner.send(room, "a thread root that is not for the bot")
    for command in ("/status", "/help new", "/image"):
        mark = len(owner.seen)
        await owner.send(room, command, thread_root=root)
        reply = await owner.wait_for(lambda s: s.sender == rig.bot.user_id and s.type == "m.room.message",
                                     after=mark)
        assert reply.relates["rel_type"] == "m.thread" and reply.relates["event_id"] == root, command
    assert "usage: /image <prompt>" in reply.content["body"]
    status = _bodies(owner.from_user(rig.bot.user_id, room))[0]
    assert "undecryptable" in status  # /status shows E2EE health...
    assert not re.search(r"\b(True|False|None)\b", status), status  # ...in words, not Python values


async def test_disallowed_user_gets_no_join_and_no_answer(rig):
    bridge = await rig.start_bot()
    stranger = await rig.user(rig.stranger)
    room = await stranger.create_room([rig.bot.user_id], name="nope")
    # The bot declines: its membership goes from invite to leave, never join.
    await stranger.wait_for(lambda s: s.room_id == room and s.type == "m.room.member"
                            and s.event.state_key == rig.bot.user_id and s.event.membership == "leave")
    assert bridge.metrics["declined_invites"] == 1
    # And in a room it is in (invited by an owner), the stranger's messages get nothing.
    owner = await rig.user(rig.owner)
    shared = await owner.create_room([rig.bot.user_id, rig.stranger.user_id], name="shared",
                                     wait_join=rig.bot.user_id)
    await stranger.client.join(shared)
    await stranger.wait_for(lambda s: s.room_id == shared and s.type == "m.room.member"
                            and s.event.state_key == rig.stranger.user_id)
    await stranger.send(shared, f"{rig.bot.user_id} /status please")
    await stranger.send(shared, "/help")
    mark = len(owner.seen)
    await owner.send(shared, "/jobs")  # the owner's later command is answered: the stranger's were skipped
    await owner.wait_for(lambda s: s.sender == rig.bot.user_id and s.type == "m.room.message", after=mark)
    assert len(owner.from_user(rig.bot.user_id, shared)) == 1
    assert bridge.metrics["ignored_sender"] == 2


async def test_group_room_ignores_chatter_not_addressed_to_bot(rig):
    bridge = await rig.start_bot()
    owner = await rig.user(rig.owner)
    room = await owner.create_room([rig.bot.user_id, rig.guest.user_id], name="chatter",
                                   wait_join=rig.bot.user_id)
    await owner.send(room, "just talking to my friend")
    await owner.send(room, "/jobs")
    await owner.wait_for(lambda s: s.sender == rig.bot.user_id and s.type == "m.room.message")
    assert len(owner.from_user(rig.bot.user_id, room)) == 1
    assert await _settled_counts(bridge) == {"done": 2}


async def test_image_command_arrives_as_downloadable_m_image_with_job_reactions(rig):
    await rig.start_bot()
    guest = await rig.user(rig.guest)
    room = await guest.create_room([rig.bot.user_id], name="art", wait_join=rig.bot.user_id)
    asked = await guest.send(room, "/image a tiny red dot")
    image = await guest.wait_for(lambda s: s.sender == rig.bot.user_id and s.content.get("msgtype") == "m.image")
    assert image.content["info"]["mimetype"] == "image/png" and image.content["info"]["w"] == 1
    resp = await guest.client.download(image.content["url"])
    assert isinstance(resp, DownloadResponse) and resp.body == PNG_1x1
    await guest.wait_for(lambda s: s.type == "m.reaction" and s.sender == rig.bot.user_id
                         and s.relates.get("event_id") == asked and s.relates.get("key") == "✅")
    keys = [s.relates["key"] for s in guest.seen if s.type == "m.reaction" and s.sender == rig.bot.user_id]
    assert keys[0] == "⏳"
    done = next(i for i, s in enumerate(guest.seen) if s.type == "m.reaction" and s.relates.get("key") == "✅")
    assert guest.seen.index(image) < done  # ✅ lands once the image is there
    # The progress line ends with the job's final state, not at its last step.
    line = next(s for s in guest.from_user(rig.bot.user_id, room) if s.content.get("body", "").startswith("⚙️"))
    await guest.wait_for(lambda s: s.is_edit and s.relates["event_id"] == line.event_id
                         and s.content["m.new_content"]["body"].startswith("✅ paint · done in"))
    await guest.settle(0.3)
    edits = [s for s in guest.from_user(rig.bot.user_id, room, edits=True) if s.relates["event_id"] == line.event_id]
    assert edits[-1].content["m.new_content"]["body"].startswith("✅ paint · done in")
    texts = _bodies(guest.from_user(rig.bot.user_id, room))
    assert not [t for t in texts if "size_bytes" in t or "node" in t], texts  # what a person cares about


async def test_approval_by_owner_reaction_runs_destructive_skill(rig):
    await rig.start_bot()
    owner = await rig.user(rig.owner)
    room = await owner.create_room([rig.bot.user_id], name="approve", wait_join=rig.bot.user_id)
    before = len(RESTARTS)
    await owner.send(room, "/restart-mcp")
    ask = await owner.wait_for(lambda s: s.sender == rig.bot.user_id and "approval" in s.content.get("body", ""))
    assert len(RESTARTS) == before  # nothing runs before the answer
    await owner.react(room, ask.event_id, "✅")
    await owner.wait_for(lambda s: s.sender == rig.bot.user_id
                         and "restart_service** done" in s.content.get("body", ""))
    assert len(RESTARTS) == before + 1


async def test_denial_or_non_owner_reaction_does_not_run(rig):
    await rig.start_bot()
    owner = await rig.user(rig.owner)
    guest = await rig.user(rig.guest)
    room = await owner.create_room([rig.bot.user_id, rig.guest.user_id], name="deny", wait_join=rig.bot.user_id)
    await guest.client.join(room)
    before = len(RESTARTS)
    await owner.send(room, "/restart-mcp")
    ask = await owner.wait_for(lambda s: s.sender == rig.bot.user_id and "approval" in s.content.get("body", ""))
    await guest.react(room, ask.event_id, "✅")  # a user, not an owner: ignored
    await owner.react(room, ask.event_id, "❌")
    reply = await owner.wait_for(lambda s: s.sender == rig.bot.user_id and "not approved" in s.content.get("body", ""))
    assert reply and len(RESTARTS) == before
    edit = await owner.wait_for(lambda s: s.is_edit and s.relates["event_id"] == ask.event_id)
    assert f"denied by {rig.owner.user_id}" in edit.content["m.new_content"]["body"]


async def test_approval_expires_without_running(rig):
    await rig.start_bot(approval_timeout_s=1.0)
    owner = await rig.user(rig.owner)
    room = await owner.create_room([rig.bot.user_id], name="expire", wait_join=rig.bot.user_id)
    before = len(RESTARTS)
    await owner.send(room, "/restart-mcp")
    await owner.wait_for(lambda s: s.sender == rig.bot.user_id and "not approved" in s.content.get("body", ""))
    edit = await owner.wait_for(lambda s: s.is_edit and "expired" in s.content["m.new_content"]["body"])
    assert edit and len(RESTARTS) == before


async def test_first_start_ignores_history_then_answers_new_messages(rig):
    owner = await rig.user(rig.owner)
    room = await owner.create_room([rig.bot.user_id], name="history")
    headers = {"Authorization": f"Bearer {rig.bot.access_token}"}
    async with httpx.AsyncClient(base_url=rig.synapse.url, headers=headers) as http:
        resp = await http.post(f"/_matrix/client/v3/join/{room}", json={})
        assert resp.status_code == 200, resp.text
    await owner.send(room, "/status")  # before the bot's first start: history, never answered
    await owner.wait_for(lambda s: s.content.get("body") == "/status")
    bridge = await rig.start_bot()
    mark = len(owner.seen)
    await owner.send(room, "/jobs")
    reply = await owner.wait_for(lambda s: s.sender == rig.bot.user_id and s.type == "m.room.message", after=mark)
    assert "job" in reply.content["body"].lower()
    await owner.settle(0.5)
    assert len(owner.from_user(rig.bot.user_id, room)) == 1
    assert await _settled_counts(bridge) == {"done": 1}


async def test_encrypted_room_commands_and_encrypted_image(rig):
    bridge = await rig.start_bot()
    owner = await rig.user(rig.owner)
    room = await owner.create_room([rig.bot.user_id], name="secret", encrypted=True, wait_join=rig.bot.user_id)
    mark = len(owner.seen)
    await owner.send(room, "/help status")
    reply = await owner.wait_for(lambda s: s.sender == rig.bot.user_id and s.content.get("msgtype") == "m.text",
                                 after=mark)
    assert reply.source.get("type") == "m.room.message" and "/status" in reply.content["body"]
    assert type(reply.event).__name__ != "MegolmEvent"
    await owner.send(room, "/image a secret dot")
    image = await owner.wait_for(lambda s: s.sender == rig.bot.user_id and s.content.get("msgtype") == "m.image")
    assert "url" not in image.content and image.content["file"]["url"].startswith("mxc://")
    resp = await owner.client.download(image.content["file"]["url"])
    from nio.crypto import decrypt_attachment

    f = image.content["file"]
    plain = decrypt_attachment(resp.body, f["key"]["k"], f["hashes"]["sha256"], f["iv"])
    assert plain == PNG_1x1
    assert bridge.metrics["undecryptable"] == 0


async def test_rate_limited_bot_honours_retry_after_and_answers_everything(rig):
    headers = {"Authorization": f"Bearer {rig.synapse.admin.access_token}"}
    async with httpx.AsyncClient(base_url=rig.synapse.url, headers=headers) as http:
        resp = await http.post(f"/_synapse/admin/v1/users/{rig.bot.user_id}/override_ratelimit",
                               json={"messages_per_second": 2, "burst_count": 1})
        assert resp.status_code == 200, resp.text
    await rig.start_bot()
    owner = await rig.user(rig.owner)
    room = await owner.create_room([rig.bot.user_id], name="limits", wait_join=rig.bot.user_id)
    for i in range(4):
        await owner.send(room, f"/help {['new', 'jobs', 'status', 'why'][i]}")
    await owner.wait_for(lambda s: s.sender == rig.bot.user_id and "/why" in s.content.get("body", ""))
    assert len(owner.from_user(rig.bot.user_id, room)) == 4


async def test_undecryptable_events_are_counted_and_shown_in_status(rig):
    bridge = await rig.start_bot()
    owner = await rig.user(rig.owner)
    room = await owner.create_room([rig.bot.user_id], name="broken-e2ee", encrypted=True,
                                   wait_join=rig.bot.user_id)
    # An encrypted event from a Megolm session the bot never received a key for.
    bogus = {"algorithm": "m.megolm.v1.aes-sha2", "sender_key": "A" * 43, "device_id": "NOPE",
             "session_id": "B" * 43, "ciphertext": "AwgAEnB" + "C" * 80}
    headers = {"Authorization": f"Bearer {owner.client.access_token}"}
    async with httpx.AsyncClient(base_url=rig.synapse.url, headers=headers) as http:
        resp = await http.put(f"/_matrix/client/v3/rooms/{room}/send/m.room.encrypted/{_uid()}", json=bogus)
        assert resp.status_code == 200, resp.text
    mark = len(owner.seen)
    await owner.send(room, "/status")
    status = await owner.wait_for(
        lambda s: s.sender == rig.bot.user_id and "undecryptable" in s.content.get("body", ""), after=mark)
    assert "undecryptable 1" in status.content["body"]
    assert bridge.status()["undecryptable"] == 1


async def test_schedule_announcements_reach_opted_in_rooms_and_the_schedule_room(rig):
    from bridges.matrix import component
    from hub.context import Context

    registry = test_registry()
    rig.hub = await Hub.start(rig.config(), skills=registry, components=())
    await component.setup(rig.hub)
    rig.bridge = rig.hub.extras["matrix"]
    await rig.bridge.synced.wait()
    owner = await rig.user(rig.owner)
    news = await owner.create_room([rig.bot.user_id], name="news", wait_join=rig.bot.user_id)
    other = await owner.create_room([rig.bot.user_id], name="other", wait_join=rig.bot.user_id)
    await owner.send(news, "/settings announce on")
    await owner.wait_for(lambda s: s.sender == rig.bot.user_id and "announce = **on**" in s.content.get("body", ""))
    await rig.hub.bus.fire("announcement", {"text": "Nightly digest done", "room": None}, Context.new("cron"))
    await owner.wait_for(lambda s: s.room_id == news and s.content.get("body") == "Nightly digest done")
    await rig.hub.bus.fire("announcement", {"text": "Only for other", "room": other}, Context.new("cron"))
    await owner.wait_for(lambda s: s.room_id == other and s.content.get("body") == "Only for other")
    assert not [s for s in owner.seen if s.room_id == other and s.content.get("body") == "Nightly digest done"]
    await component.teardown(rig.hub)
    rig.bridge = None


async def test_revoked_access_token_leads_to_a_fresh_login_and_answers_continue(rig):
    bridge = await rig.start_bot()
    owner = await rig.user(rig.owner)
    room = await owner.create_room([rig.bot.user_id], name="relogin", wait_join=rig.bot.user_id)
    old_device = bridge.conn.client.device_id
    headers = {"Authorization": f"Bearer {bridge.conn.client.access_token}"}
    async with httpx.AsyncClient(base_url=rig.synapse.url, headers=headers) as http:
        assert (await http.post("/_matrix/client/v3/logout", json={})).status_code == 200
    mark = len(owner.seen)
    await owner.send(room, "/jobs")
    await owner.wait_for(lambda s: s.sender == rig.bot.user_id and s.type == "m.room.message", after=mark,
                         timeout=40)
    assert bridge.metrics["relogins"] == 1 and bridge.conn.client.device_id != old_device
