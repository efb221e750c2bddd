"""Exactly once across kill -9: the bot runs as a real process, is SIGKILLed mid-answer, restarts, stops on TERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from hub.sim.serve import serve_app
from hub.sim.sglang import create_app
from tests.testbed.matrix_user import MatrixUserClient

pytest.importorskip("hub.chat.component", reason="needs the chat service")

REPO = Path(__file__).resolve().parents[1]


class BotProcess:
    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([sys.executable, "-m", "bridges.matrix", "--config", str(self.config_path)],
                                     cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


def write_config(tmp: Path, synapse, bot, human, llm_url: str) -> Path:
    secret = tmp / "bot-password"
    secret.write_text(bot.password)
    config = {
        "storage": {"data_dir": str(tmp / "data")},
        "matrix": {"enabled": True, "homeserver": synapse.url, "user_id": bot.user_id,
                   "password_file": str(secret), "allowed_users": [human.user_id], "owners": [human.user_id],
                   "edit_interval_s": 0.2, "sync_timeout_ms": 1000},
        "llm": {"local": {"base_url": f"{llm_url}/v1"}, "cloud": {"enabled": False}},
        "routing": {"default_policy": "local"},
    }
    path = tmp / "hub.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def test_sigkill_mid_answer_then_two_messages_each_answered_exactly_once(synapse, tmp_path):
    bot = synapse.register(f"kbot{uuid.uuid4().hex[:8]}")
    human_user = synapse.register(f"khuman{uuid.uuid4().hex[:8]}")
    async with serve_app(create_app(tokens_per_s=15)) as llm_url:
        proc = BotProcess(write_config(tmp_path, synapse, bot, human_user, llm_url), tmp_path / "bot.log")
        human = await MatrixUserClient(synapse.url, human_user, tmp_path / "human").start()
        try:
            proc.start()
            room = await human.create_room([bot.user_id], name="restart")
            await human.wait_for(lambda s: s.room_id == room and s.type == "m.room.member"
                                 and s.event.state_key == bot.user_id and s.event.membership == "join", timeout=60)
            first = await human.send(room, "first question " + "and more words " * 10)
            # The answer starts streaming (one message, then edits)... and the bot is killed mid-answer.
            await human.wait_for(lambda s: s.sender == bot.user_id and s.type == "m.room.message", timeout=60)
            proc.kill9()
            second = await human.send(room, "second question")
            third = await human.send(room, "third question")
            proc.start()

            def final_for(question_text: str):
                return lambda s: (s.sender == bot.user_id and s.is_edit
                                  and s.content["m.new_content"]["body"] == f"You said: {question_text}") or (
                    s.sender == bot.user_id and not s.is_edit and s.content.get("body") == f"You said: {question_text}")

            for text in ("first question " + "and more words " * 10, "second question", "third question"):
                await human.wait_for(final_for(text.strip() if text.endswith(" ") else text), timeout=60)
            await human.settle(1.5)
            originals = human.from_user(bot.user_id, room)
            replied_to = [m.relates.get("m.in_reply_to", {}).get("event_id") for m in originals]
            assert sorted(replied_to) == sorted([first, second, third]), (replied_to, proc.tail())
            # And a plain SIGTERM stops the bot cleanly.
            proc.proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.proc.wait, 15) == 0, proc.tail()
        finally:
            proc.stop()
            await human.close()
