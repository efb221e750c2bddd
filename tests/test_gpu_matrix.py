"""`/gpu` through a real Matrix room (the test Synapse) against stand-in residents under the process
driver: anyone allowed sees the GPU, only an owner changes it."""

from __future__ import annotations

import pytest

from bridges.matrix.bridge import MatrixBridge
from hub.config.residents import ResidentsConfig
from hub.core import Hub
from tests import status_helpers
from tests.helpers_skills import test_registry
from tests.test_matrix_bridge import BotRig

pytestmark = pytest.mark.synapse


async def test_gpu_commands_in_a_matrix_room(synapse, tmp_path):
    rig = BotRig(synapse, tmp_path)
    config = rig.config().model_copy(update={"residents": ResidentsConfig.model_validate(
        status_helpers.sim_residents())})
    rig.hub = await Hub.start(config, skills=test_registry(), components=("hub.gpu.component",))
    scheduler = rig.hub.gpu
    try:
        rig.bridge = MatrixBridge(rig.hub)
        await rig.bridge.start()
        await rig.bridge.synced.wait()
        owner = await rig.user(rig.owner)
        guest = await rig.user(rig.guest)
        room = await owner.create_room([rig.bot.user_id], name="gpu", wait_join=rig.bot.user_id)
        guest_room = await guest.create_room([rig.bot.user_id], name="gpu-guest", wait_join=rig.bot.user_id)

        async def ask(who, text: str, expect: str) -> str:
            where = guest_room if who is guest else room
            mark = len(who.seen)
            await who.send(where, text)
            reply = await who.wait_for(lambda s: s.sender == rig.bot.user_id and s.type == "m.room.message"
                                       and expect in s.content.get("body", ""), after=mark)
            return reply.content["body"]

        await ask(guest, "/gpu", "**GPU**")
        await ask(guest, "/gpu load comfyui", "owners only")
        await ask(owner, "/gpu pin comfyui 30m", f"comfyui pinned by {rig.owner.user_id}")
        body = await ask(owner, "/gpu unload comfyui", "refused")
        assert f"comfyui is pinned by {rig.owner.user_id}" in body  # refused with the scheduler's reason
    finally:
        await rig.close()
        await status_helpers._stop_process_residents(scheduler)
