"""kill -9 while an episode is encoding leaves a hidden `.partial`; the next run removes it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from hub.context import Context
from tests.helpers_content import content_config, content_hub
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]
ARTICLE = "---\ntitle: Crash test\n---\n" + "\n\n".join(
    f"Paragraph {i} talks about unified memory, model swaps and why a crash must leave nothing behind."
    for i in range(12))


def _config(tmp_path: Path) -> dict:
    return content_config(tmp_path, blog_dir=str(tmp_path / "blog"), tts_chunk_chars=400)


def child_main() -> None:
    """Render the episode; the test kills this process once its `.partial` file appears."""
    tmp_path = Path(os.environ["PODCAST_TMP"])

    async def run() -> None:
        async with content_hub(_config(tmp_path)) as hub:
            await hub.run_skill("render_podcast", {"article": ARTICLE, "rewrite": False}, Context.new("cli"))

    asyncio.run(run())


@pytest.mark.slow
async def test_a_partial_episode_left_by_a_kill_during_encoding_is_removed_by_the_next_run(tmp_path, monkeypatch):
    podcasts = tmp_path / "blog" / "public" / "podcasts"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PODCAST_TMP": str(tmp_path)}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from tests.test_podcast_partial import child_main; child_main()", cwd=REPO, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        def partial_or_exited() -> bool:
            return child.returncode is not None or (podcasts.is_dir() and bool(list(podcasts.glob(".*.partial"))))

        await wait_until(partial_or_exited, timeout=120, interval=0.005, what="the partial episode file")
        if child.returncode is None:
            child.send_signal(signal.SIGKILL)
        await child.wait()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert child.returncode == -signal.SIGKILL, "the episode finished before it could be killed mid-encoding"
    (leftover,) = podcasts.glob(".*.partial")
    assert not list(podcasts.glob("*.mp3"))

    import skills.content.podcast as podcast

    monkeypatch.setattr(podcast, "LEFTOVER_AGE_S", 0.0)  # the crash was just now
    async with content_hub(_config(tmp_path)) as hub:
        result = await hub.run_skill("render_podcast", {"article": ARTICLE, "rewrite": False}, Context.new("cli"))
    assert sorted(p.name for p in podcasts.iterdir()) == [Path(result.path).name]
    assert not leftover.exists()
