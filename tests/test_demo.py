"""`sovhub demo` end to end: a real pseudo-terminal session (pexpect) and a `--script` run.

The demo runs as its own process on a tmp data dir and free ports, with the stand-ins as resident
processes of the real scheduler; the sessions must get a chat answer, an image and a visible swap,
then exit cleanly with no stand-in left running.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.sim.serve import free_port

pexpect = pytest.importorskip("pexpect", reason="pexpect is a dev extra")

SOVHUB = [sys.executable, "-m", "hub.cli"]
ROOT = Path(__file__).resolve().parents[1]
SGR = r"(?:\x1b\[[0-9;]*m)*"  # bold/dim survive NO_COLOR on a real terminal
PROMPT = f"you>{SGR} "


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOVHUB_", "ANTHROPIC_"))}
    env.update(COLUMNS="200", TERM="xterm", NO_COLOR="1", PYTHONUNBUFFERED="1")
    return env


def _args(data_dir: Path) -> list[str]:
    return ["demo", "--data-dir", str(data_dir), "--mcp-port", str(free_port()), "--status-port", "0",
            "--api-port", "0", "--load-seconds", "0.8"]


def _stand_ins_running(data_dir: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "sovhub demo stand-in" in line and str(data_dir) in line]


def test_interactive_session_gets_an_answer_an_image_and_a_visible_swap(tmp_path):
    child = pexpect.spawn(SOVHUB[0], [*SOVHUB[1:], *_args(tmp_path)], cwd=str(ROOT), env=_env(),
                          encoding="utf-8", timeout=90, dimensions=(50, 200))
    try:
        child.expect("Anthropic stand-in")  # no ANTHROPIC_API_KEY: the banner says which cloud it is
        child.expect("MCP server: http://127.0.0.1:")
        child.expect(PROMPT)
        child.sendline("hello from the terminal")
        child.expect(f"sovhub>{SGR} You said: hello from the terminal")
        child.expect(r"↳ (local|cloud)")
        child.expect(PROMPT)
        child.sendline("/image a lighthouse at dawn")
        child.expect(f"stopping {SGR}sglang{SGR} to free its memory")
        child.expect(f"comfyui is ready{SGR} after")
        child.expect(r"image(?:\x1b\[[0-9;]*m)* (\S+\.png) ")
        image = Path(child.match.group(1))
        child.expect(PROMPT)
        child.sendline("/quit")
        child.expect("bye")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _stand_ins_running(tmp_path) == []


def test_script_runs_the_content_commands_and_exits(tmp_path):
    script = tmp_path / "session.txt"
    data = tmp_path / "data"
    script.write_text("\n".join([
        "# a comment line is skipped",
        "!claude what is a GB10?",
        "/podcast welcome",
        f"/publish --draft {data / 'notes' / 'eagle-on-the-gb10.md'}",
        "/cancel",
        "/status",
    ]) + "\n")
    result = subprocess.run([*SOVHUB, *_args(data), "--script", str(script)], cwd=ROOT, env=_env(),
                            capture_output=True, text=True, timeout=180)
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "You said: what is a GB10?" in out and "cloud · Anthropic stand-in" in out
    assert "vllm-omni is ready after" in out
    episodes = list((data / "blog" / "public" / "podcasts").glob("*.mp3"))
    assert episodes and episodes[0].stat().st_size > 10_000
    drafts = list((data / "blog" / "drafts").glob("*.md"))  # outside everything Astro reads
    assert [d.name for d in drafts] == ["eagle-on-the-gb10-38-tokens-per-second.md"]
    assert "heroImage:" in drafts[0].read_text()
    assert "needs approval: approved" in out and out.rstrip().endswith("bye")
    assert "usage: /cancel <job>" in out  # usage errors keep their <placeholders> in the terminal
    assert _stand_ins_running(data) == []


def test_demo_goes_on_when_a_bridge_cannot_start(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        script = tmp_path / "session.txt"
        script.write_text("/status\n")
        args = ["demo", "--data-dir", str(tmp_path / "data"), "--mcp-port", str(port), "--status-port", str(port),
                "--api-port", "0", "--load-seconds", "0.3", "--script", str(script)]
        result = subprocess.run([*SOVHUB, *args], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "MCP server: not available" in result.stdout and "status page: not available" in result.stdout
    assert "Address already in use" in result.stdout
    assert "GPU:" in result.stdout and result.stdout.rstrip().endswith("bye")


def test_the_bot_joins_matrix_when_a_homeserver_is_configured(tmp_path, synapse):
    script = tmp_path / "session.txt"
    script.write_text("/status\n")
    env = _env()
    env.update(SOVHUB_MATRIX__ENABLED="true", SOVHUB_MATRIX__HOMESERVER=synapse.url,
               SOVHUB_MATRIX__USER_ID=synapse.bot.user_id, SOVHUB_MATRIX__PASSWORD=synapse.bot.password,
               SOVHUB_MATRIX__ALLOWED_USERS=f'["{synapse.human.user_id}"]')
    result = subprocess.run([*SOVHUB, *_args(tmp_path / "data"), "--script", str(script)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"Matrix: the bot {synapse.bot.user_id} is online on {synapse.url}" in result.stdout
    assert "bridge is not available" not in result.stdout
    assert (tmp_path / "data" / "matrix").is_dir()  # the E2EE store lives in the demo's data dir


async def test_without_the_scheduler_every_stand_in_runs_in_process(tmp_path):
    import httpx

    from hub.demo.fleet import RESIDENTS, SimFleet

    fleet = SimFleet(tmp_path)
    fleet.managed = False  # what a build without hub.gpu gets
    await fleet.start_unmanaged()
    try:
        async with httpx.AsyncClient() as client:
            for name, (_, _, _, health, _) in RESIDENTS.items():
                assert (await client.get(fleet.url(name) + health)).status_code == 200, name
    finally:
        await fleet.stop()
