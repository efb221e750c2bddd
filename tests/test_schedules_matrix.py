"""On a real Synapse: `/schedule add` in a room, and the scheduled run's result announced there as m.notice."""

from __future__ import annotations

import uuid

from bridges.matrix import component as matrix_component
from hub.config.model import HubConfig
from hub.core import Hub
from tests.test_schedules import registry
from tests.testbed.matrix_user import MatrixUserClient


async def test_a_schedule_added_in_a_room_announces_each_result_there_as_a_notice(synapse, tmp_path):
    uid = uuid.uuid4().hex[:8]
    bot, owner = synapse.register(f"bot{uid}"), synapse.register(f"owner{uid}")
    config = HubConfig.model_validate({
        "storage": {"data_dir": str(tmp_path / "data")},
        "matrix": {"enabled": True, "homeserver": synapse.url, "user_id": bot.user_id, "password": bot.password,
                   "owners": [owner.user_id], "edit_interval_s": 0.3, "sync_timeout_ms": 1000},
    })
    hub = await Hub.start(config, skills=registry(), components=("hub.schedules.component",))
    user: MatrixUserClient | None = None
    try:
        await matrix_component.setup(hub)  # the bridge as `sovhub run` starts it, with its announcement hook
        await hub.extras["matrix"].synced.wait()
        user = await MatrixUserClient(synapse.url, owner, tmp_path / "owner-store").start()
        room = await user.create_room([bot.user_id], name="schedules", wait_join=bot.user_id)

        mark = len(user.seen)
        await user.send(room, "/schedule add hello every 1s echo text=hello")
        reply = await user.wait_for(lambda s: s.sender == bot.user_id and "Scheduled" in s.content.get("body", ""),
                                    after=mark)
        assert f"results go to {room}" in reply.content["body"]

        notice = await user.wait_for(lambda s: s.sender == bot.user_id and s.room_id == room
                                     and "hello (echo) done in" in s.content.get("body", ""), after=mark)
        assert notice.content["msgtype"] == "m.notice"
        assert notice.content["body"].startswith("✅ hello (echo) done in ")
        assert notice.content["body"].endswith(": hello")

        await user.send(room, "/schedule pause hello")
        await user.wait_for(lambda s: s.sender == bot.user_id and "Paused **hello**" in s.content.get("body", ""),
                            after=mark)
        run = (await hub.schedules.history("hello", 1))[0]
        job = await hub.jobs.get(run.job_id)
        assert job.job_class == "scheduled" and job.context.user == "schedule:hello"
    finally:
        if user is not None:
            await user.close()
        await matrix_component.teardown(hub)
        await hub.stop()
