"""The example plugin (tests/data/plugins/sovhub-reading-time) end to end from a pip install.

pip installs it into a fresh venv layered on this one (no network, no build isolation); that
venv's `sovhub` lists it with its package and version, a real `sovhub run` serves it to a chat turn
(the local model calls it as a tool), to an MCP client and to a schedule, and the terminal chat of
`sovhub demo` runs it as the /readtime command and as the model's tool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from fastmcp import Client

from hub.sim import sglang
from hub.sim.serve import AppServer, free_port
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "tests" / "data" / "plugins" / "sovhub-reading-time"
TEXT = "one two three four five six seven eight nine ten"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory) -> Path:
    """A venv that sees this one's packages (sovhub included) plus the pip-installed example plugin."""
    root = tmp_path_factory.mktemp("plugin-venv")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    base = sysconfig.get_paths()["purelib"]
    Path(site, "_sovhub_base.pth").write_text(f"import site; site.addsitedir({base!r})\n")
    source = root / "src"
    shutil.copytree(PLUGIN, source)  # pip builds in the source tree: keep the repo clean
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", str(source)], check=True, capture_output=True)
    return python


def sovhub(python: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOVHUB_")}
    return subprocess.run([str(python), "-m", "hub.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**env, "COLUMNS": "250"}, cwd=ROOT, **kw)


def test_the_installed_plugin_is_listed_with_its_package_and_version(plugin_venv, tmp_path):
    listed = sovhub(plugin_venv, "skills")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "reading_time" in line)
    assert "/readtime" in row and "package sovhub-reading-time 0.1.0" in row and "read" in row
    assert "skipped" not in listed.stdout
    assert sovhub(plugin_venv, "config", "check").stdout.strip() == "OK"


async def _wait_for_scheduled_job(db: Path, timeout: float = 30) -> tuple:
    def succeeded() -> tuple | None:
        if not db.exists():
            return None
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            rows = conn.execute("SELECT status, result, origin FROM jobs WHERE skill = 'reading_time' "
                                "AND origin = 'cron'").fetchall() if _has_jobs(conn) else []
        return rows[0] if rows and rows[0][0] == "succeeded" else None

    return await wait_until(succeeded, timeout=timeout, interval=0.2, what="the schedule to run the plugin's skill")


def _has_jobs(conn: sqlite3.Connection) -> bool:
    return bool(conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'jobs'").fetchall())


async def test_a_running_hub_serves_the_plugin_to_chat_mcp_and_a_schedule(plugin_venv, tmp_path):
    llm = AppServer(sglang.create_app())
    await llm.start()
    port = free_port()
    config = tmp_path / "hub.yaml"
    config.write_text(f"""
storage: {{data_dir: {tmp_path / 'data'}}}
status: {{enabled: false}}
mcp: {{port: {port}, call_wait_s: 10}}
llm: {{local: {{base_url: {llm.url}/v1, model: mistral-small-4, max_retries: 0}}}}
skills:
  settings:
    reading_time: {{words_per_minute: 100}}
schedules:
  - {{name: words, skill: reading_time, params: {{text: "{TEXT}"}}, interval_s: 1}}
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOVHUB_")}
    log = tmp_path / "hub.log"
    with log.open("w") as out:
        proc = await asyncio.create_subprocess_exec(str(plugin_venv), "-m", "hub.cli", "run", "--config", str(config),
                                                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        await _wait_for_port(port, proc, log)
        async with Client(f"http://127.0.0.1:{port}/mcp", timeout=30) as client:
            assert "reading_time" in {t.name for t in await client.list_tools()}
            direct = await client.call_tool("reading_time", {"text": TEXT})
            assert direct.structured_content == {"words": 10, "minutes": 0.1, "words_per_minute": 100}
            chat = await client.call_tool(
                "ask_local", {"prompt": f'[[call reading_time {{"text": "{TEXT}", "words_per_minute": 200}}]]'})
            assert '"words":10' in chat.structured_content["text"]
            assert '"minutes":0.05' in chat.structured_content["text"]
        status, result, origin = await _wait_for_scheduled_job(tmp_path / "data" / "sovhub.db")
        assert (status, origin) == ("succeeded", "cron") and json.loads(result)["words"] == 10
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 20)
        await llm.stop()


async def _wait_for_port(port: int, proc, log: Path) -> None:
    async def listening() -> bool:
        assert proc.returncode is None, log.read_text()
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        return True

    try:
        await wait_until(listening, timeout=60, what=f"the hub to listen on {port}", ignoring=(OSError,))
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {log.read_text()}") from None


def test_the_terminal_chat_runs_the_plugin_as_a_command_and_as_the_models_tool(plugin_venv, tmp_path):
    script = tmp_path / "session.txt"
    script.write_text("\n".join([
        f"/readtime {TEXT}",
        f'please measure [[call reading_time {{"text": "{TEXT}", "words_per_minute": 50}}]]',
        "/search EAGLE speculative decoding",  # web_search on the demo's SearXNG stand-in
    ]) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOVHUB_", "ANTHROPIC_"))}
    env.update(COLUMNS="200", TERM="xterm", NO_COLOR="1", PYTHONUNBUFFERED="1")
    result = subprocess.run(
        [str(plugin_venv), "-m", "hub.cli", "demo", "--data-dir", str(tmp_path / "data"), "--mcp-port",
         str(free_port()), "--status-port", "0", "--load-seconds", "0.2", "--script", str(script)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "reading_time done" in out and "• words: 10" in out and "• words_per_minute: 230" in out, out[-3000:]
    # the local model's tool call, run through the chat service and answered in the chat
    assert 'Tool results: reading_time: {"words":10,"minutes":0.2,"words_per_minute":50}' in out, out[-3000:]
    assert "web_search done" in out and "results: 2: SGLang documentation: speculative decoding" in out, out[-3000:]
