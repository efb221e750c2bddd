"""Slash commands: one table, generated help, usage errors, skills through the one registry path."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from hub.commands import CommandEnv, RoomSettings, dispatch, help_text, is_command
from hub.commands.handlers import request_job_id
from hub.commands.parser import Arg, Signature, UsageError, parse_args, split_command
from hub.commands.skillargs import result_text, skill_signature
from hub.config.model import HubConfig
from hub.context import Context
from hub.core import Hub
from hub.jobs import SkillRun
from hub.registry import Permission, skill
from tests.helpers_skills import test_registry
from tests.waiting import wait_until


class DrawParams(BaseModel):
    prompt: str = Field(description="what to draw")
    size: str = Field("1024x1024", description="WxH")
    steps: int = 4


class DrawResult(BaseModel):
    path: str


@skill(name="draw", description="Draw a picture (test)", params=DrawParams, result=DrawResult,
       long_running=True, command="image")
async def draw(run: SkillRun, params: DrawParams) -> DrawResult:
    await run.progress(1, 2, "sampling")
    out = run.artifacts_dir / "out.png"
    out.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    await run.progress(2, 2, "saved")
    return DrawResult(path=str(out))


class RenderResult(BaseModel):
    path: str
    size_bytes: int
    node: str


@skill(name="render", description="Render with internals in the result (test)", params=DrawParams,
       result=RenderResult, long_running=True)
async def render(run: SkillRun, params: DrawParams) -> RenderResult:
    out = run.artifacts_dir / "render.png"
    out.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    return RenderResult(path=str(out), size_bytes=12, node="9")


class PurgeResult(BaseModel):
    summary: str


@skill(name="purge", description="Purge a cache (destructive, long-running test)", params=DrawParams,
       result=PurgeResult, long_running=True, permission=Permission.destructive)
async def purge(run: SkillRun, params: DrawParams) -> PurgeResult:
    return PurgeResult(summary=f"purged {params.prompt}")


class RecordingIO:
    """A CommandIO that records what a bridge would have shown (and in which order)."""

    def __init__(self) -> None:
        self.replies: list[str] = []
        self.states: list[str] = []
        self.progress_lines: list[str] = []
        self.files: list[tuple[Path, str, str]] = []
        self.order: list[str] = []

    async def reply(self, text: str) -> None:
        self.replies.append(text)
        self.order.append("reply")

    async def job_state(self, state: str) -> None:
        self.states.append(state)
        self.order.append(state)

    async def progress(self, text: str) -> None:
        self.progress_lines.append(text)
        self.order.append("progress")

    async def send_file(self, path: Path, *, kind: str, caption: str) -> None:
        self.files.append((path, kind, caption))
        self.order.append("file")


class Key:
    def __init__(self, room: str) -> None:
        self.bridge, self.room, self.thread = "test", room, None


@pytest.fixture
async def hub(tmp_path):
    registry = test_registry()
    registry.register(draw)
    registry.register(render)
    registry.register(purge)
    config = HubConfig.model_validate({"storage": {"data_dir": str(tmp_path)}})
    h = await Hub.start(config, skills=registry, components=())
    yield h
    await h.stop()


def make_env(hub, role="user", approver=None) -> tuple[CommandEnv, RecordingIO]:
    io = RecordingIO()
    env = CommandEnv(hub=hub, context=Context.new("matrix", user="@a:localhost"), io=io,
                     conversation=Key("!room:localhost"), role=role,
                     settings=RoomSettings(hub.store, "test"), approver=approver)
    return env, io


def test_split_command_recognises_slash_and_rejects_plain_text():
    assert split_command("/image a red fox") == ("image", "a red fox")
    assert split_command("/help") == ("help", "")
    assert split_command("hello /help") is None
    assert is_command("/status") and not is_command("what is /status?")


def test_parser_reports_missing_argument_with_usage_line():
    sig = Signature("cancel", (Arg("job"),))
    with pytest.raises(UsageError) as err:
        parse_args(sig, "")
    assert "usage: /cancel <job>" in str(err.value) and "missing <job>" in str(err.value)


def test_parser_checks_choices_and_unknown_options():
    sig = Signature("model", (Arg("policy", required=False, choices=("local", "claude", "auto")),))
    assert parse_args(sig, "local").values["policy"] == "local"
    with pytest.raises(UsageError, match="must be one of local, claude, auto"):
        parse_args(sig, "gpt")
    with pytest.raises(UsageError, match="unknown option --fast"):
        parse_args(sig, "--fast 1")


def test_skill_usage_is_derived_from_its_params_model():
    sig = skill_signature(draw)
    assert sig.usage() == "usage: /image <prompt> [--size 1024x1024] [--steps 4]"
    parsed = parse_args(sig, 'a "red fox" --size 512x512 steps=2')
    assert parsed.values == {"prompt": "a red fox", "size": "512x512", "steps": "2"}


async def test_help_is_generated_from_table_and_registry_aliases(hub):
    text = help_text(hub.skills, "owner")
    for name in ("/help", "/new", "/model", "/status", "/jobs", "/cancel <job>", "/run <skill>", "/schedule",
                 "/image <prompt>"):
        assert name in text
    assert "/settings" not in help_text(hub.skills, "user")  # owner-only commands are hidden from users
    env, io = make_env(hub)
    await dispatch(env, "/help image")
    assert io.replies[0].startswith("`/image <prompt> [--size 1024x1024] [--steps 4]`")


async def test_skill_command_without_its_argument_gets_usage(hub):
    env, io = make_env(hub)
    assert await dispatch(env, "/image")
    assert io.replies == ["missing <prompt>\nusage: /image <prompt> [--size 1024x1024] [--steps 4]"]


async def test_unknown_command_is_a_clear_error_and_plain_text_is_not_a_command(hub):
    env, io = make_env(hub)
    assert await dispatch(env, "/frobnicate now")
    assert io.replies == ["unknown command /frobnicate; /help lists them"]
    assert not await dispatch(env, "just chatting")


async def test_image_command_runs_skill_through_registry_with_job_states_and_file(hub):
    env, io = make_env(hub)
    await dispatch(env, "/image a red fox --steps 2")
    assert io.states == ["started", "succeeded"]
    assert io.files and io.files[0][1] == "image" and io.files[0][0].read_bytes().startswith(b"\x89PNG")
    assert io.progress_lines[0].startswith("⚙️ draw 1/2")
    assert io.progress_lines[-1].startswith("✅ draw · done in")  # the line ends with the final state
    assert io.order.index("file") < io.order.index("succeeded")  # ✅ once the image is there
    jobs = await hub.jobs.list()
    assert jobs[0].skill == "draw" and jobs[0].status == "succeeded" and jobs[0].params["steps"] == "2"


async def test_run_command_validates_params_and_names_the_field(hub):
    env, io = make_env(hub)
    await dispatch(env, "/run echo text=hi times=3")
    assert "hi hi hi" in io.replies[-1]
    await dispatch(env, "/run echo times=99 text=x")
    assert "times" in io.replies[-1] and "⚠️" in io.replies[-1]
    await dispatch(env, "/run echo text=x colour=red")
    assert "no parameter 'colour'" in io.replies[-1]


async def test_destructive_skill_is_refused_for_users_and_asks_owners(hub):
    env, io = make_env(hub, role="user")
    await dispatch(env, "/run wipe")
    assert "needs destructive permission" in io.replies[-1]
    asked = []

    async def deny(skill, params, ctx):
        asked.append(skill.name)
        return False

    env, io = make_env(hub, role="owner", approver=deny)
    await dispatch(env, "/run wipe")
    assert asked == ["wipe"] and "not approved" in io.replies[-1]


async def test_model_and_settings_persist_per_room(hub):
    env, io = make_env(hub, role="owner")
    await dispatch(env, "/model claude")
    assert await env.settings.get("!room:localhost", "policy") == "cloud"
    await dispatch(env, "/settings thread_mode always")
    await dispatch(env, "/settings")
    assert "thread_mode**: always" in io.replies[-1] and "policy**: cloud" in io.replies[-1]
    await dispatch(env, "/settings thread_mode sideways")
    assert "must be one of" in io.replies[-1]
    user_env, user_io = make_env(hub, role="user")
    await dispatch(user_env, "/settings announce on")
    assert "owners only" in user_io.replies[-1]


async def test_jobs_cancel_status_and_skills_answer(hub):
    env, io = make_env(hub)
    await dispatch(env, "/run echo text=hey")
    await dispatch(env, "/jobs")
    assert "echo" in io.replies[-1] and "succeeded" in io.replies[-1]
    job_id = (await hub.jobs.list())[0].id
    await dispatch(env, f"/cancel {job_id}")
    assert "succeeded" in io.replies[-1]
    env.status_extra = lambda: {"matrix": {"undecryptable": 2}}
    await dispatch(env, "/status")
    assert "sovhub" in io.replies[-1] and "undecryptable 2" in io.replies[-1]
    await dispatch(env, "/skills")
    assert "**draw** (/image)" in io.replies[-1]


async def test_chat_commands_say_clearly_when_no_chat_service(hub):
    env, io = make_env(hub)
    await dispatch(env, "/new")
    assert io.replies == ["⚠️ the chat service is not running in this hub"]




def test_result_with_a_summary_shows_the_summary_and_its_links_not_every_field():
    from skills.ops.diagnose import DiagnoseResult
    from skills.ops.restart_mcp import RestartResult

    diag = DiagnoseResult(status="degraded", summary="SGLang is up but slow: 3 requests queued.",
                          url="http://127.0.0.1:30000", residency="resident",
                          metrics={"queue": 3.0}, log_tail=["line"] * 50, server={"model": "x" * 500})
    text = result_text(test_registry().get("echo"), diag)
    assert text.startswith("SGLang is up but slow: 3 requests queued.")
    assert "- url: http://127.0.0.1:30000" in text
    assert "log_tail" not in text and "metrics" not in text and "xxxx" not in text
    restart = RestartResult(target="ops", kind="docker", url="http://127.0.0.1:8123/mcp", tool_count=2,
                            tools=["a", "b"], seconds_to_healthy=1.5, restart_seconds=2.0,
                            summary="ops restarted and healthy in 1.5 s: 2 tools")
    text = result_text(test_registry().get("echo"), restart)
    assert text == "ops restarted and healthy in 1.5 s: 2 tools\n\n- url: http://127.0.0.1:8123/mcp"


class Hit(BaseModel):
    slug: str
    title: str
    score: float


class Rich(BaseModel):
    path: str
    body: str
    hits: list[Hit]
    chunk_seconds: list[float]
    note: str | None = None
    draft: bool = False
    link: str = "https://example.org/post"


def test_result_without_a_summary_is_one_short_line_per_field(tmp_path):
    audio = tmp_path / "episode.wav"
    audio.write_bytes(b"RIFF")
    result = Rich(path=str(audio), body="word " * 500, chunk_seconds=[1.25] * 40,
                  hits=[Hit(slug=f"p{i}", title=f"Post {i}", score=0.5) for i in range(5)])
    text = result_text(test_registry().get("echo"), result)
    lines = text.splitlines()
    assert lines[0] == "**echo** done"
    assert "episode.wav" not in text  # sent as an attachment
    assert "- hits: 5: Post 0; Post 1; Post 2 …" in lines
    assert "- chunk_seconds: 40: 1.25, 1.25, 1.25 …" in lines
    assert "- draft: no" in lines and "- link: https://example.org/post" in lines
    assert not any(line.startswith("- note") for line in lines)
    assert all(len(line) <= 220 for line in lines), lines


async def test_a_command_seen_again_with_the_same_request_id_follows_its_job_instead_of_rerunning(hub):
    env, io = make_env(hub)
    env.request_id = "test:$event1"
    await dispatch(env, "/run echo text=hi")
    await dispatch(env, "/run echo text=hi")  # the same request, replayed
    assert io.replies[0] == io.replies[1] and "text: hi" in io.replies[0]
    jobs = await hub.jobs.list()
    assert [j.id for j in jobs] == [request_job_id("test:$event1")]
    # A job cut off by a restart is reported, not run again.
    env2, io2 = make_env(hub)
    env2.request_id = "test:$event2"
    job_id = request_job_id("test:$event2")
    await dispatch(env2, "/run echo text=again")
    await hub.jobs.flush()
    await hub.store.db.execute("UPDATE jobs SET status='failed', error='interrupted by a hub restart' WHERE id=?",
                               (job_id,))
    await dispatch(env2, "/run echo text=again")
    assert "interrupted by a hub restart and is not run again" in io2.replies[-1]
    assert len(await hub.jobs.list()) == 2


async def test_a_result_with_files_shows_the_files_not_internals_like_sizes_or_node_ids(hub):
    env, io = make_env(hub)
    await dispatch(env, "/run render prompt=fox")
    assert io.files and io.replies == []  # no "size_bytes 12, node 9" beside the picture


async def test_hourglass_shows_only_once_the_job_runs_not_while_it_waits_for_an_approval(hub):
    seen_at_approval: list[list[str]] = []

    async def approve(skill, params, ctx):
        seen_at_approval.append(list(io.states))
        return True

    env, io = make_env(hub, role="owner", approver=approve)
    await dispatch(env, "/run purge prompt=thumbnails")
    assert seen_at_approval == [[]]
    assert io.states == ["started", "succeeded"] and io.replies == ["purged thumbnails"]


async def test_status_reads_as_words_not_python_values(hub):
    env, io = make_env(hub)
    env.status_extra = lambda: {"matrix": {"user": "@bot:x", "synced": True, "last_sync_s_ago": 2.0,
                                           "undecryptable": 0, "relogins": None},
                                "storage": {"ok": False}}
    await dispatch(env, "/status")
    text = io.replies[-1]
    assert "True" not in text and "None" not in text and "False" not in text and "_" not in text
    assert "Matrix: user @bot:x, synced, last sync 2 s ago, undecryptable 0" in text and "Storage: not ok" in text


async def test_a_front_end_that_stops_while_following_a_job_does_not_mark_it_failed(hub):
    """The bridge stopping (its task cancelled) says nothing about the job: no ❌, the job goes on."""
    import asyncio

    env, io = make_env(hub)
    env.request_id = "test:stop-while-following"
    following = asyncio.create_task(dispatch(env, "/run nap seconds=1"))
    await wait_until(lambda: "started" in io.states, what="the job to start")
    following.cancel()
    with pytest.raises(asyncio.CancelledError):
        await following
    assert io.states == ["started"]
    job = hub.jobs.active[request_job_id("test:stop-while-following")]
    await job.wait(timeout=10)  # the job itself was not cancelled with its follower
