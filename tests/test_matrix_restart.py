"""Exactly once across kill -9: the bot runs as a real process, is SIGKILLed mid-answer, restarts, stops on TERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, Field

from hub.jobs import SkillRun
from hub.registry import skill
from hub.sim.serve import serve_app
from hub.sim.sglang import create_app
from tests.testbed.matrix_user import MatrixUserClient
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]


class TallyParams(BaseModel):
    label: str = Field(description="what to count")


class TallyResult(BaseModel):
    summary: str


@skill(name="tally", description="Count a run in a file, slowly (test)", params=TallyParams, result=TallyResult,
       long_running=True, timeout_s=60, command="tally")
async def tally(run: SkillRun, params: TallyParams) -> TallyResult:
    """Each run appends its label to $TALLY_FILE first: the file says how often the skill really ran."""
    with open(os.environ["TALLY_FILE"], "a") as f:
        f.write(params.label + "\n")
    for i in range(30):
        await run.progress(i + 1, 30, "counting")
        await asyncio.sleep(0.1)  # the skill's simulated work: three seconds, so a kill lands mid-run
    return TallyResult(summary=f"counted {params.label}")


@skill(name="queued_tally", description="Count a run in a file once the painter resident is up (test)",
       params=TallyParams, result=TallyResult, resident="painter", long_running=True, timeout_s=60,
       command="qtally")
async def queued_tally(run: SkillRun, params: TallyParams) -> TallyResult:
    with open(os.environ["TALLY_FILE"], "a") as f:
        f.write(params.label + "\n")
    return TallyResult(summary=f"counted {params.label}")


def bot_with_tally_main() -> None:
    """The bot process of the command tests: the test skills plus `tally` and `queued_tally`."""
    from bridges.matrix.__main__ import main
    from tests.helpers_skills import test_registry

    registry = test_registry()
    registry.register(tally)
    registry.register(queued_tally)
    main(sys.argv[1:], skills=registry)


class BotProcess:
    def __init__(self, config_path: Path, log_path: Path, *, tally_file: Path | None = None) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.tally_file = tally_file
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "bridges.matrix"]
        if self.tally_file is not None:
            env["TALLY_FILE"] = str(self.tally_file)
            cmd = [sys.executable, "-c", "from tests.test_matrix_restart import bot_with_tally_main as m; m()"]
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([*cmd, "--config", str(self.config_path)],
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


def write_config(tmp: Path, synapse, bot, human, llm_url: str, homeserver: str | None = None,
                 residents: dict | None = None) -> Path:
    secret = tmp / "bot-password"
    secret.write_text(bot.password)
    config = {
        "storage": {"data_dir": str(tmp / "data")},
        "matrix": {"enabled": True, "homeserver": homeserver or synapse.url, "user_id": bot.user_id,
                   "password_file": str(secret), "allowed_users": [human.user_id], "owners": [human.user_id],
                   "edit_interval_s": 0.2, "sync_timeout_ms": 1000},
        "llm": {"local": {"base_url": f"{llm_url}/v1"}, "cloud": {"enabled": False}},
        "routing": {"default_policy": "local"},
    }
    if residents:
        config["residents"] = residents
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


async def _wait_file_lines(path: Path, n: int, timeout: float = 60) -> list[str]:
    """The file's lines once there are `n` (or what there is after `timeout`: the caller's assert says more)."""
    def lines() -> list[str]:
        return path.read_text().splitlines() if path.exists() else []

    with contextlib.suppress(AssertionError):
        await wait_until(lambda: len(lines()) >= n, timeout=timeout, what=f"{n} line(s) in {path.name}")
    return lines()


async def test_sigkill_while_a_skill_command_runs_never_runs_the_skill_twice(synapse, tmp_path):
    bot = synapse.register(f"cbot{uuid.uuid4().hex[:8]}")
    human_user = synapse.register(f"chuman{uuid.uuid4().hex[:8]}")
    tally_file = tmp_path / "tally.txt"
    async with serve_app(create_app()) as llm_url:
        proc = BotProcess(write_config(tmp_path, synapse, bot, human_user, llm_url), tmp_path / "bot.log",
                          tally_file=tally_file)
        human = await MatrixUserClient(synapse.url, human_user, tmp_path / "human").start()
        try:
            proc.start()
            room = await human.create_room([bot.user_id], name="commands")
            await human.wait_for(lambda s: s.room_id == room and s.type == "m.room.member"
                                 and s.event.state_key == bot.user_id and s.event.membership == "join", timeout=60)
            first = await human.send(room, "/tally one")
            assert await _wait_file_lines(tally_file, 1) == ["one"], proc.tail()
            await asyncio.sleep(0.5)  # not a wait for a condition: the kill lands half a second into a 3 s run
            proc.kill9()
            second = await human.send(room, "/tally two")  # arrives while the bot is down
            proc.start()

            def reply_to(event_id: str, text: str):
                return lambda s: (s.sender == bot.user_id and s.type == "m.room.message" and not s.is_edit
                                  and s.relates.get("m.in_reply_to", {}).get("event_id") == event_id
                                  and text in s.content.get("body", ""))

            await human.wait_for(reply_to(first, "interrupted by a hub restart"), timeout=60)
            await human.wait_for(reply_to(second, "counted two"), timeout=60)
            await human.wait_for(lambda s: s.type == "m.reaction" and s.sender == bot.user_id
                                 and s.content["m.relates_to"] == {"rel_type": "m.annotation", "event_id": first,
                                                                   "key": "❌"}, timeout=30)
            await human.settle(1.0)
            assert tally_file.read_text().splitlines() == ["one", "two"], proc.tail()
            texts = [m.content.get("body", "") for m in human.from_user(bot.user_id, room)]
            assert sum("interrupted" in t for t in texts) == 1, texts
            assert sum("counted two" in t for t in texts) == 1, texts
        finally:
            proc.stop()
            await human.close()


async def test_a_replayed_command_whose_job_finished_reports_that_job_once_and_does_not_rerun_it(
        synapse, tmp_path, monkeypatch):
    """The job ended but the bot died before marking the request done: the replay reports, never reruns."""
    from bridges.matrix.bridge import MatrixBridge
    from hub.core import Hub
    from tests.helpers_skills import test_registry
    from tests.test_matrix_bridge import BotRig, _settled_counts

    tally_file = tmp_path / "tally.txt"
    monkeypatch.setenv("TALLY_FILE", str(tally_file))
    rig = BotRig(synapse, tmp_path)
    try:
        registry = test_registry()
        registry.register(tally)
        rig.hub = await Hub.start(rig.config(), skills=registry, components=())
        rig.bridge = MatrixBridge(rig.hub)
        await rig.bridge.start()
        await rig.bridge.synced.wait()
        owner = await rig.user(rig.owner)
        room = await owner.create_room([rig.bot.user_id], wait_join=rig.bot.user_id)
        ask = await owner.send(room, "/tally once")

        def answered(s) -> bool:
            return (s.sender == rig.bot.user_id and not s.is_edit and "counted once" in s.content.get("body", "")
                    and s.relates.get("m.in_reply_to", {}).get("event_id") == ask)

        await owner.wait_for(answered, timeout=30)
        await _settled_counts(rig.bridge)
        await rig.bridge.stop()
        # As if the process died after the answer but before the inbox row was marked done.
        await rig.hub.store.db.execute("UPDATE matrix_inbox SET state='pending' WHERE event_id=?", (ask,))
        rig.bridge = MatrixBridge(rig.hub)
        await rig.bridge.start()
        await rig.bridge.synced.wait()
        assert (await _settled_counts(rig.bridge)).get("pending") is None
        assert rig.bridge.metrics["command"] == 1  # the request was replayed...
        await owner.settle(1.0)
        assert tally_file.read_text().splitlines() == ["once"]  # ...without running the skill again
        assert len([s for s in owner.seen if answered(s)]) == 1  # and its answer is the same message
    finally:
        await rig.close()


def _newest_edit_body(human, bot_id: str, room: str, question: str) -> tuple[int, str | None]:
    """(how many messages answer `question`, the text a client shows for it: newest m.replace wins)."""
    originals = [m for m in human.from_user(bot_id, room)
                 if m.relates.get("m.in_reply_to", {}).get("event_id") == question]
    if not originals:
        return 0, None
    edits = [e for e in human.from_user(bot_id, room, edits=True) if e.relates["event_id"] == originals[0].event_id]
    if not edits:
        return len(originals), originals[0].content.get("body")
    newest = max(edits, key=lambda e: (e.source["origin_server_ts"], e.event_id))
    return len(originals), newest.content["m.new_content"]["body"]


async def _no_pending_questions(db_path: Path, timeout: float = 90) -> None:
    """Until the bot's inbox (its SQLite file, read beside it) has no question left unanswered."""
    import sqlite3

    def answered() -> bool:
        with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)) as db:
            return not db.execute("SELECT count(*) FROM matrix_inbox WHERE state='pending'").fetchone()[0]

    await wait_until(answered, timeout=timeout, interval=0.1, what="no question left pending in the inbox")


async def _server_side_body(human, synapse_url: str, room: str, event_id: str) -> str:
    """What the homeserver itself says is the newest edit (its bundled `m.replace` aggregation),
    decrypted by the human's client in an encrypted room (the relation stays in the clear)."""
    import httpx
    from nio import Event, MegolmEvent

    async def fetch(eid: str) -> dict:
        async with httpx.AsyncClient(base_url=synapse_url,
                                     headers={"Authorization": f"Bearer {human.client.access_token}"}) as http:
            raw = (await http.get(f"/_matrix/client/v3/rooms/{room}/event/{eid}")).json()
        if raw.get("type") == "m.room.encrypted":
            parsed = Event.parse_encrypted_event(raw)
            assert isinstance(parsed, MegolmEvent), raw
            raw = {**raw, "content": human.client.decrypt_event(parsed).source["content"]}
        return raw

    event = await fetch(event_id)
    replace = ((event.get("unsigned") or {}).get("m.relations") or {}).get("m.replace")
    if not replace:
        return event["content"]["body"]
    return (await fetch(replace["event_id"]))["content"]["m.new_content"]["body"]


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
async def test_sigkill_at_each_step_of_a_streamed_answer_leaves_the_complete_answer_newest(
        synapse, tmp_path, encrypted):
    """Killed right after the first message, after a streaming edit, after the edit with the complete
    answer reached the homeserver (its reply held back by a proxy), and during the replay's complete
    edit: after the restarts every answer's newest edit — what a client shows, decrypted in an E2EE
    room with the bot's kept store — is whole, and each question has one message."""
    from nio import MegolmEvent

    from tests.testbed.delay_proxy import DelayProxy

    bot = synapse.register(f"xbot{uuid.uuid4().hex[:8]}")
    human_user = synapse.register(f"xhuman{uuid.uuid4().hex[:8]}")
    proxy = await DelayProxy(synapse.url).start()
    words = " ".join(f"word{i}" for i in range(24))
    questions = {name: f"{name} {words}" for name in ("first", "second", "third")}
    expected = {name: f"You said: {q}" for name, q in questions.items()}
    async with serve_app(create_app(tokens_per_s=20)) as llm_url:
        proc = BotProcess(write_config(tmp_path, synapse, bot, human_user, llm_url, homeserver=proxy.url),
                          tmp_path / "bot.log")
        human = await MatrixUserClient(synapse.url, human_user, tmp_path / "human").start()
        ids: dict[str, str] = {}

        def sends(question: str, part: str):
            """The bot's sends for `question` whose transaction id continues with `part` (the proxy sees
            the ids, not the text, in an encrypted room)."""
            return lambda m, p, b: m == "PUT" and "/send/" in p and f"sovhub.{question}{part}" in p

        async def arrived(hold) -> None:
            try:
                await asyncio.wait_for(hold.arrived.wait(), 60)
            except TimeoutError:
                raise AssertionError(f"the hold never matched\n{proc.tail()}") from None

        async def killed_at(hold) -> None:
            await arrived(hold)
            proc.kill9()
            hold.release()

        async def killed_at_the_complete_edit(question: str, want: str) -> None:
            """Each edit is held at the homeserver until the human has seen (decrypted) it; the bot dies
            at the one showing the complete answer, before it learns that edit arrived."""
            hold = proxy.hold(sends(question, ".p0."))
            while True:
                await arrived(hold)
                event_id = hold.response["event_id"]
                seen = await human.wait_for(lambda s, e=event_id: s.event_id == e, timeout=30)
                if (seen.content.get("m.new_content") or {}).get("body") == want:
                    proc.kill9()
                    hold.release()
                    return
                hold, held = proxy.hold(sends(question, ".p0.")), hold  # armed before the next edit can go
                held.release()

        try:
            proc.start()
            room = await human.create_room([bot.user_id], name="crash-steps", encrypted=encrypted)
            await human.wait_for(lambda s: s.room_id == room and s.type == "m.room.member"
                                 and s.event.state_key == bot.user_id and s.event.membership == "join", timeout=60)
            # 1. Killed once the first message is at the homeserver.
            hold = proxy.hold(lambda m, p, b: m == "PUT" and "/send/" in p and p.endswith(".p0"))
            ids["first"] = await human.send(room, questions["first"])
            await killed_at(hold)
            # 2. Killed once a streaming edit is at the homeserver (the question arrives while the bot
            #    is down; the first answer is replayed before it).
            ids["second"] = await human.send(room, questions["second"])
            hold = proxy.hold(sends(ids["second"], ".p0.e"))
            proc.start()
            await killed_at(hold)
            # 3. Killed once the edit with the complete answer is at the homeserver, before its reply.
            ids["third"] = await human.send(room, questions["third"])
            proc.start()
            await killed_at_the_complete_edit(ids["third"], expected["third"])
            # 4. Killed once the replay's complete edit is at the homeserver: replayed once more.
            hold = proxy.hold(sends(ids["third"], ".p0.replay."))
            proc.start()
            await killed_at(hold)
            proc.start()

            def state() -> dict[str, tuple[int, str | None]]:
                return {n: _newest_edit_body(human, bot.user_id, room, ids[n]) for n in ids}

            def all_complete(_=None) -> bool:
                return state() == {n: (1, expected[n]) for n in ids}

            try:
                await human.wait_for(lambda s: all_complete(), timeout=90)
                # The restarted bot has replayed everything it had not finished (a complete answer
                # that reached the homeserver before the kill can be seen long before that).
                await _no_pending_questions(tmp_path / "data" / "sovhub.db")
            except (TimeoutError, AssertionError) as exc:
                raise AssertionError(f"{exc}: {state()}\n{proc.tail()}") from None
            await human.settle(1.0)  # nothing later replaces a complete answer with a partial one
            assert all_complete(), state()
            undecrypted = [s for s in human.seen if s.room_id == room and isinstance(s.event, MegolmEvent)]
            assert not undecrypted, [s.source for s in undecrypted]
            for name, question in ids.items():
                original = next(m for m in human.from_user(bot.user_id, room)
                                if m.relates.get("m.in_reply_to", {}).get("event_id") == question)
                assert await _server_side_body(human, synapse.url, room, original.event_id) == expected[name]
        finally:
            proc.stop()
            await human.close()
            await proxy.close()

async def test_sigkill_while_a_command_is_queued_for_the_gpu_resumes_it_after_the_restart(synapse, tmp_path):
    """Queued behind a loading resident (not started): after kill -9 the job runs once, and is answered."""
    from hub.sim.serve import free_port
    from tests.test_gpu_runtime import sim_command

    bot = synapse.register(f"qbot{uuid.uuid4().hex[:8]}")
    human_user = synapse.register(f"qhuman{uuid.uuid4().hex[:8]}")
    tally_file = tmp_path / "tally.txt"
    port = free_port()
    painter = f"http://127.0.0.1:{port}"
    residents = {
        "pool": {"memory_gb": 100, "reserve_gb": 0}, "memory_guard": {"enabled": False}, "min_residency_s": 0,
        "monitor_interval_s": 0.5,
        "painter": {"kind": "image", "memory_gb": 20, "base_url": painter, "start_timeout_s": 60,
                    "swap_seconds": 8, "driver": {"type": "process", "command": sim_command("comfyui", port, delay=8)},
                    "ready": {"url": painter + "/system_stats"}},
    }
    async with serve_app(create_app()) as llm_url:
        proc = BotProcess(write_config(tmp_path, synapse, bot, human_user, llm_url, residents=residents),
                          tmp_path / "bot.log", tally_file=tally_file)
        human = await MatrixUserClient(synapse.url, human_user, tmp_path / "human").start()
        try:
            proc.start()
            room = await human.create_room([bot.user_id], name="queued")
            await human.wait_for(lambda s: s.room_id == room and s.type == "m.room.member"
                                 and s.event.state_key == bot.user_id and s.event.membership == "join", timeout=60)
            asked = await human.send(room, "/qtally one")
            await human.wait_for(lambda s: s.sender == bot.user_id and "queued" in s.content.get("body", ""),
                                 timeout=30)
            proc.kill9()  # the painter is still loading: the job never started
            assert not tally_file.exists()
            proc.start()
            try:
                await human.wait_for(lambda s: s.sender == bot.user_id and not s.is_edit
                                     and "counted one" in s.content.get("body", "")
                                     and s.relates.get("m.in_reply_to", {}).get("event_id") == asked, timeout=90)
            except TimeoutError:
                raise AssertionError(proc.tail()) from None
            await human.settle(1.0)
            assert tally_file.read_text().splitlines() == ["one"]
            texts = [m.content.get("body", "") for m in human.from_user(bot.user_id, room)]
            assert not [t for t in texts if "interrupted" in t], texts
        finally:
            proc.stop()
            await human.close()
