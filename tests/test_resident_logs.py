"""Process residents log to a configurable directory with rotation; a full log disk never stops them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hub.config import load_config
from hub.gpu.drivers import ProcessDriver, make_driver
from hub.gpu.readiness import wait_ready
from hub.sim.serve import free_port
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]
CHATTY = [sys.executable, "-c", "import time\nwhile True:\n    print('x' * 99, flush=True)\n    time.sleep(0.002)"]


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB tmpfs filled to the last byte (needs root, as tests/run.sh runs)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        with open(mnt / "filler", "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


async def test_the_log_rotates_while_the_server_runs_and_keeps_only_the_configured_files(tmp_path):
    driver = ProcessDriver("chatty", CHATTY, state_dir=tmp_path / "state", log_dir=tmp_path / "logs",
                           log_max_bytes=20_000, log_keep=2)
    await driver.start()
    try:
        log = tmp_path / "logs" / "chatty.log"
        assert (tmp_path / "logs" / "chatty.pid").exists() and not (tmp_path / "state" / "chatty.pid").exists()
        for _ in range(3):  # three rotations: .1 and .2 kept, nothing beyond
            await wait_until(lambda: log.stat().st_size > 20_000, interval=0.01, what="the log past its limit")
            assert await driver.is_running()  # the monitor's regular question rotates it
        assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == [
            "chatty.log", "chatty.log.1", "chatty.log.2", "chatty.pid"]
        await wait_until(lambda: log.stat().st_size > 0, what="the server's writes after the rotation")
        data = log.read_bytes()
        assert data and b"\0" not in data  # the server's append-mode writes land at the new end, no hole
        assert (tmp_path / "logs" / "chatty.log.1").stat().st_size > 20_000
    finally:
        await driver.stop(2)


async def test_a_full_log_disk_does_not_stop_a_model_server_from_starting(tmp_path, full_disk, caplog):
    port = free_port()
    command = [sys.executable, "-m", "hub.sim", "sglang", "--port", str(port), "--option", "load_seconds=0.3"]
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path / "data")}, "residents": {
        "pool": {"memory_gb": 128}, "sglang": {
            "kind": "llm", "memory_gb": 90, "base_url": f"http://127.0.0.1:{port}", "default": True,
            "driver": {"type": "process", "command": command, "cwd": str(REPO), "log_dir": str(full_disk)},
            "ready": {"url": f"http://127.0.0.1:{port}/health"}}}}, environ={})
    driver = make_driver("sglang", config.residents.servers["sglang"], tmp_path / "data" / "residents")
    assert driver.log_dir == full_disk
    await driver.start()
    try:
        await wait_ready(driver, f"http://127.0.0.1:{port}/health", 200, start_timeout_s=30, stall_timeout_s=0.2,
                         poll_s=0.05)
        assert "sglang starts without a log file" in caplog.text and "residents.sglang.driver.log_dir" in caplog.text
        assert "started without a log file" in await driver.tail()
    finally:
        await driver.stop(5)
    assert not await driver.is_running()
