"""The Synapse test bed works end to end with the real matrix-nio client."""

from __future__ import annotations

import asyncio
import time

import httpx
from nio import AsyncClient, LoginResponse, RoomCreateResponse, RoomMessageText, SyncResponse


async def _login(synapse, user) -> AsyncClient:
    client = AsyncClient(synapse.url, user.user_id)
    resp = await client.login(user.password, device_name="test")
    assert isinstance(resp, LoginResponse), resp
    return client


def test_fixture_gives_three_distinct_users_on_localhost(synapse):
    ids = {synapse.admin.user_id, synapse.bot.user_id, synapse.human.user_id}
    assert len(ids) == 3
    assert all(i.endswith(":localhost") for i in ids)
    assert httpx.get(f"{synapse.url}/health").status_code == 200


async def test_registered_user_logs_in_and_message_reaches_other_user_via_sync(synapse):
    carol = synapse.register(f"carol{int(time.time() * 1000)}")
    sender = await _login(synapse, carol)
    receiver = await _login(synapse, synapse.human)
    try:
        room = await sender.room_create(invite=[synapse.human.user_id], name="testbed")
        assert isinstance(room, RoomCreateResponse), room
        first = await receiver.sync(timeout=0)
        assert isinstance(first, SyncResponse)
        await receiver.join(room.room_id)
        await sender.sync(timeout=0)
        await sender.room_send(room.room_id, "m.room.message", {"msgtype": "m.text", "body": "hello bed"})

        got: list[str] = []
        deadline = time.monotonic() + 15
        while not got and time.monotonic() < deadline:
            resp = await receiver.sync(timeout=2000)
            assert isinstance(resp, SyncResponse)
            joined = resp.rooms.join.get(room.room_id)
            if joined:
                got += [e.body for e in joined.timeline.events if isinstance(e, RoomMessageText)]
        assert got == ["hello bed"]
    finally:
        await asyncio.gather(sender.close(), receiver.close())


def test_register_can_make_an_admin(synapse):
    boss = synapse.register(f"boss{int(time.time() * 1000)}", admin=True)
    token = httpx.post(f"{synapse.url}/_matrix/client/v3/login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": boss.localpart},
        "password": boss.password}).json()["access_token"]
    who = httpx.get(f"{synapse.url}/_synapse/admin/v2/users/{boss.user_id}",
                    headers={"Authorization": f"Bearer {token}"})
    assert who.status_code == 200 and who.json()["admin"] is True
