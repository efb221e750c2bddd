"""Local-only through the Matrix entry point, on the real Synapse: `!claude` and `/claude` in a
local-only room are refused with the way out, and the Anthropic stand-in sees zero requests."""

from __future__ import annotations

import uuid

import httpx
import pytest

from bridges.matrix.bridge import MatrixBridge
from hub.config.model import HubConfig
from hub.core import Hub
from hub.sim import anthropic as anthropic_sim
from hub.sim import sglang as sglang_sim
from hub.sim.serve import AppServer
from tests.helpers_skills import test_registry
from tests.testbed.matrix_user import MatrixUserClient

REFUSED = "This room is local-only, so nothing was sent to Claude"


@pytest.fixture
async def private_room(synapse, tmp_path):
    local, cloud = AppServer(sglang_sim.create_app()), AppServer(anthropic_sim.create_app(api_key="sk-test"))
    await local.start()
    await cloud.start()
    uid = uuid.uuid4().hex[:8]
    bot, person, friend = (synapse.register(f"{n}{uid}") for n in ("pbot", "owner", "member"))
    config = HubConfig.model_validate({
        "storage": {"data_dir": str(tmp_path / "data")},
        "matrix": {"enabled": True, "homeserver": synapse.url, "user_id": bot.user_id, "password": bot.password,
                   "allowed_users": [person.user_id, friend.user_id], "owners": [person.user_id],
                   "edit_interval_s": 0.25, "sync_timeout_ms": 1000},
        "llm": {"local": {"base_url": f"{local.url}/v1", "max_retries": 0},
                "cloud": {"base_url": cloud.url, "api_key": "sk-test", "max_retries": 0}},
    })
    hub = await Hub.start(config, skills=test_registry(), components=("hub.chat.component",))
    bridge = MatrixBridge(hub)
    await bridge.start()
    await bridge.synced.wait()
    human = await MatrixUserClient(synapse.url, person, tmp_path / "human").start()
    member = await MatrixUserClient(synapse.url, friend, tmp_path / "member").start()
    try:
        yield bot, human, member, cloud
    finally:
        await member.close()
        await human.close()
        await bridge.stop()
        await hub.stop()
        await local.stop()
        await cloud.stop()


async def _cloud_requests(cloud: AppServer) -> int:
    async with httpx.AsyncClient() as http:
        return (await http.get(cloud.url + "/_sim/stats")).json()["requests"]


def _bot_says(bot, fragment: str):
    def match(s) -> bool:
        body = (s.content.get("m.new_content") or s.content).get("body", "")
        return s.sender == bot.user_id and fragment in body
    return match


async def test_claude_prefix_and_command_in_a_local_only_room_reach_nobody(private_room):
    bot, human, member, cloud = private_room
    room = await human.create_room([bot.user_id, member.user.user_id], name="private", wait_join=bot.user_id)
    await member.client.join(room)

    async def ask(who, text: str, expect: str):
        mark = len(human.seen)
        await who.send(room, text)
        return await human.wait_for(_bot_says(bot, expect), after=mark)

    await ask(human, "/model local-only", "now **local-only**")
    for text in (f"{bot.user_id}: !claude what is in my diary?", "/claude what is in my diary?"):
        refused = await ask(human, text, REFUSED)
        assert "`/model auto`" in (refused.content.get("m.new_content") or refused.content)["body"]
    # a member cannot open the room to the cloud again, nor go around it
    await ask(member, "/model auto", "Only the room's owner can change the model policy")
    await ask(member, f"{bot.user_id}: !claude and now?", REFUSED)
    assert await _cloud_requests(cloud) == 0
    await ask(human, "/model auto", "now **auto**")  # the owner can; then the witness does count
    await ask(human, f"{bot.user_id}: !claude hello", "You said: hello")
    assert await _cloud_requests(cloud) == 1
