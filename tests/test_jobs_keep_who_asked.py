"""Jobs keep who asked: a resumed job keeps its caller's permission (and privacy), a side-effect
skill's success row is on disk before the caller is told, and publishing the same notes again
after a crash (SIGKILL in the middle of the deploy) reports the article already there."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel

from hub.config import load_config
from hub.context import Context
from hub.core import Hub
from hub.jobs import SkillRun
from hub.registry import Permission, skill
from hub.sim import sglang
from tests.helpers_content import stand_in
from tests.helpers_skills import test_registry
from tests.test_skill_publish import ARTICLE, NOTES, make_site, script
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]


class Empty(BaseModel):
    pass


class Who(BaseModel):
    grant: str
    privacy: str | None


@skill(name="whoami", description="Which permission and privacy its job runs with", params=Empty, result=Who)
async def whoami(run: SkillRun, params: Empty) -> Who:
    return Who(grant=run.grant.name, privacy=run.context.privacy)


@skill(name="touch", description="A skill with a side effect", params=Empty, result=Empty,
       permission=Permission.write)
async def touch(run: SkillRun, params: Empty) -> Empty:
    return Empty()


def _registry():
    registry = test_registry()
    registry.register(whoami)
    registry.register(touch)
    return registry


async def test_a_job_resumed_after_a_restart_keeps_its_callers_permission_and_privacy(tmp_path):
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}}, environ={})
    hub = await Hub.start(config, skills=_registry(), components=())
    handle = await hub.start_skill("whoami", {}, Context.new("mcp", user="dash").restricted(), grant=Permission.read)
    handle._task.cancel()  # a crash before it ran: the row stays queued
    hub.jobs._stopping = True
    await wait_until(handle._task.done, what="the interrupted run to end")
    await hub.stop()
    hub = await Hub.start(config, skills=_registry(), components=())
    try:
        async def succeeded():
            job = await hub.jobs.get(handle.id)
            return job if job.status == "succeeded" else None

        job = await wait_until(succeeded, what="the requeued job to succeed")
        assert job.result == {"grant": "read", "privacy": "local-only"}  # not destructive, still local-only
    finally:
        await hub.stop()


async def test_a_side_effect_success_row_is_on_disk_before_the_caller_is_told(tmp_path):
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}}, environ={})
    hub = await Hub.start(config, skills=_registry(), components=())

    def on_disk(job_id: str) -> str:
        with sqlite3.connect(config.storage.db_path) as con:  # another connection: only committed rows
            return con.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]

    told: dict[str, str] = {}
    hub.bus.listen("job_finished", lambda e: told.setdefault(e.data["job_id"], on_disk(e.data["job_id"])))
    try:
        handle = await hub.start_skill("touch", {}, Context.new("cli"))
        await handle.wait(10)
        assert on_disk(handle.id) == "succeeded" and told[handle.id] == "succeeded"
    finally:
        await hub.stop()


def _sovhub(config: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SOVHUB_CONFIG", None)
    return subprocess.run([str(Path(sys.executable).with_name("sovhub")), "skill", "run", "publish_article",
                           *args, "--yes", "--config", str(config)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


async def test_publishing_again_after_a_crash_mid_deploy_reports_the_article_already_there(tmp_path):
    site = make_site(tmp_path, remote=False)
    notes_dir = tmp_path / "notes"
    notes_dir.mkdir()
    (notes_dir / "eagle.md").write_text(NOTES)
    kill_parent = f"import os, signal; os.kill(os.getppid(), {int(signal.SIGKILL)})"
    async with stand_in(sglang) as llm:
        await script(llm, ARTICLE, ARTICLE)

        def config(deploy: str) -> Path:
            path = tmp_path / "hub.yaml"
            path.write_text(
                f"storage:\n  data_dir: {tmp_path / 'data'}\nllm:\n  local:\n    base_url: {llm}/v1\n"
                f"  cloud:\n    enabled: false\nskills:\n  content:\n    blog_dir: {site}\n"
                f"    notes_dir: {notes_dir}\n    build_command: [{sys.executable}, build.py]\n"
                f"    deploy_command: [{sys.executable}, -c, {deploy!r}]\n    git_push: false\n")
            return path

        crashed = await asyncio.to_thread(_sovhub, config(kill_parent), f"notes={notes_dir / 'eagle.md'}",
                                          "image=false")
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
        articles = sorted(p.name for p in (site / "src" / "content" / "blog").glob("*.md"))
        assert len(articles) == 2  # the first post and the new one: the site changed before the crash
        again = await asyncio.to_thread(_sovhub, config("pass"), f"notes={notes_dir / 'eagle.md'}", "image=false")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "already published" in again.stdout and "nothing was published twice" in again.stdout
    assert "interrupted" in again.stdout
    assert sorted(p.name for p in (site / "src" / "content" / "blog").glob("*.md")) == articles
