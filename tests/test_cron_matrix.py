"""On a real Synapse: `/schedule add` in a room, and the scheduled run's result announced there as m.notice."""

from __future__ import annotations

import struct
import uuid

from pydantic import BaseModel

from bridges.matrix import component as matrix_component
from hub.config.model import HubConfig
from hub.core import Hub
from hub.jobs import SkillRun
from hub.registry import skill
from tests.test_cron import registry
from tests.test_matrix_bridge import PNG_1x1, paint
from tests.testbed.matrix_user import MatrixUserClient

WAV = (b"RIFF" + struct.pack("<I", 36 + 4800) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 24000, 48000, 2, 16)
       + b"data" + struct.pack("<I", 4800) + bytes(4800))  # 0.1 s of silence


class ChimeParams(BaseModel):
    title: str = "chime"


class ChimeResult(BaseModel):
    path: str
    seconds: float


@skill(name="chime", description="Write a short episode (test)", params=ChimeParams, result=ChimeResult)
async def chime(run: SkillRun, params: ChimeParams) -> ChimeResult:
    out = run.artifacts_dir / f"{params.title}.wav"
    out.write_bytes(WAV)
    return ChimeResult(path=str(out), seconds=0.1)


def bot_owner_and_config(synapse, tmp_path):
    """A fresh bot account, its owner, and a hub config that logs the bot in to the test Synapse."""
    uid = uuid.uuid4().hex[:8]
    bot, owner = synapse.register(f"bot{uid}"), synapse.register(f"owner{uid}")
    config = HubConfig.model_validate({
        "storage": {"data_dir": str(tmp_path / "data")},
        "matrix": {"enabled": True, "homeserver": synapse.url, "user_id": bot.user_id, "password": bot.password,
                   "owners": [owner.user_id], "edit_interval_s": 0.3, "sync_timeout_ms": 1000},
    })
    return bot, owner, config


async def test_a_schedule_added_in_a_room_announces_each_result_there_as_a_notice(synapse, tmp_path):
    bot, owner, config = bot_owner_and_config(synapse, tmp_path)
    hub = await Hub.start(config, skills=registry(), components=("hub.cron.component",))
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
        run = (await hub.cron.history("hello", 1))[0]
        job = await hub.jobs.get(run.job_id)
        assert job.job_class == "scheduled" and job.context.user == "schedule:hello"
    finally:
        if user is not None:
            await user.close()
        await matrix_component.teardown(hub)
        await hub.stop()


async def test_a_scheduled_image_or_episode_is_announced_as_the_media_itself_encrypted_where_the_room_is(
    synapse, tmp_path
):
    from nio import DownloadResponse
    from nio.crypto import decrypt_attachment

    bot, owner, config = bot_owner_and_config(synapse, tmp_path)
    skills = registry()
    skills.register(paint)
    skills.register(chime)
    hub = await Hub.start(config, skills=skills, components=("hub.cron.component",))
    user: MatrixUserClient | None = None
    try:
        await matrix_component.setup(hub)
        await hub.extras["matrix"].synced.wait()
        user = await MatrixUserClient(synapse.url, owner, tmp_path / "owner-store").start()
        plain = await user.create_room([bot.user_id], name="pictures", wait_join=bot.user_id)
        secret = await user.create_room([bot.user_id], name="episodes", encrypted=True, wait_join=bot.user_id)
        mark = len(user.seen)
        await hub.cron.add("pic", "every 1s", "paint", {"prompt": "a dot"}, room=plain)
        await hub.cron.add("ep", "every 1s", "chime", {"title": "daily"}, room=secret)

        image = await user.wait_for(lambda s: s.room_id == plain and s.content.get("msgtype") == "m.image",
                                    timeout=30, after=mark)
        await hub.cron.pause("pic")
        assert image.sender == bot.user_id and image.content["body"] == "paint.png"
        assert image.content["info"]["mimetype"] == "image/png" and image.content["info"]["w"] == 1
        got = await user.client.download(image.content["url"])
        assert isinstance(got, DownloadResponse) and got.body == PNG_1x1
        notice = next(s for s in user.seen[mark:] if s.room_id == plain and s.content.get("msgtype") == "m.notice")
        body = notice.content["body"]
        assert body.startswith("✅ pic (paint) done in ") and "paint.png" not in body  # the file says it
        assert user.seen.index(notice) < user.seen.index(image)  # the text, then the picture it speaks of

        audio = await user.wait_for(lambda s: s.room_id == secret and s.content.get("msgtype") == "m.audio",
                                    timeout=30, after=mark)
        await hub.cron.pause("ep")
        assert audio.sender == bot.user_id and type(audio.event).__name__ != "MegolmEvent"
        text = next(s for s in user.seen[mark:] if s.room_id == secret and s.content.get("msgtype") == "m.notice")
        assert text.content["body"].endswith(": 0.1") and "daily.wav" not in text.content["body"]  # seconds: 0.1
        assert "url" not in audio.content and audio.content["file"]["url"].startswith("mxc://")
        assert audio.content["info"]["duration"] == 100 and audio.content["body"] == "daily.wav"
        f = audio.content["file"]
        got = await user.client.download(f["url"])
        assert decrypt_attachment(got.body, f["key"]["k"], f["hashes"]["sha256"], f["iv"]) == WAV
        assert got.body != WAV  # the homeserver only ever held ciphertext
    finally:
        if user is not None:
            await user.close()
        await matrix_component.teardown(hub)
        await hub.stop()
