"""The process driver: spawn a command (e.g. `python -m sglang.launch_server ...` from its own
venv), SIGTERM then SIGKILL. A pid file lets a restarted hub adopt a server that still runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from hub.scheduler.drivers.base import DriverError


class ProcessDriver:
    def __init__(self, name: str, command: list[str], *, state_dir: Path, cwd: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.command = list(command)
        self.cwd = cwd
        self.env = dict(env or {})
        state_dir.mkdir(parents=True, exist_ok=True)
        self.pidfile = state_dir / f"{name}.pid"
        self.logfile = state_dir / f"{name}.log"
        self._proc: subprocess.Popen | None = None

    def _pid(self) -> int | None:
        if self._proc is not None:
            return self._proc.pid if self._proc.poll() is None else None
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child that exited
        try:
            os.kill(pid, 0)
            if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
                return None  # a zombie: exited, not yet reaped by its parent
        except (OSError, IndexError):
            return None
        return pid

    async def start(self) -> None:
        if self._pid() is None:
            self._spawn()

    def _spawn(self) -> None:
        log = open(self.logfile, "ab")
        try:
            self._proc = subprocess.Popen(
                self.command, cwd=self.cwd, env={**os.environ, **self.env}, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            raise DriverError(f"{self.name}: cannot run {self.command[0]!r}: {exc}") from exc
        finally:
            log.close()
        self.pidfile.write_text(str(self._proc.pid))

    async def stop(self, timeout: float) -> None:
        pid = self._pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        if not await self._gone_within(timeout):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            await self._gone_within(30)
        self._proc = None
        self.pidfile.unlink(missing_ok=True)

    async def _gone_within(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.05) + 2):
            if self._pid() is None:
                return True
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        return self._pid() is None

    async def is_running(self) -> bool:
        return self._pid() is not None

    async def output_since(self, since: float) -> str:
        try:
            if self.logfile.stat().st_mtime < since:
                return ""
        except OSError:
            return ""
        return await self.tail(5)

    async def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
