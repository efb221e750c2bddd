"""The process driver: spawn a command (e.g. `python -m sglang.launch_server ...` from its own
venv), SIGTERM then SIGKILL. A pid file lets a restarted hub adopt a server that still runs.

Output goes to `<log_dir>/<name>.log` (with the pid file; default: the data directory's
`residents/`), rotated copy-and-truncate style once it passes `log_max_bytes` — the server keeps
its O_APPEND descriptor and outlives the hub, so it cannot be handed a new file — keeping
`log_keep` old files. A full log disk never stops a model server: with less than `MIN_FREE_BYTES`
free the server starts without a log file (the hub logs a warning), and a rotation that cannot
copy just truncates.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from hub.gpu.drivers.base import DriverError

log = logging.getLogger(__name__)

MIN_FREE_BYTES = 1 << 20  # below this the server starts without a log file rather than not at all
DEFAULT_LOG_MAX_BYTES = 64 << 20
DEFAULT_LOG_KEEP = 3
UNLOGGED = "(started without a log file: its log disk was full)"


class ProcessDriver:
    def __init__(self, name: str, command: list[str], *, state_dir: Path, cwd: str | None = None,
                 env: dict[str, str] | None = None, log_dir: Path | None = None,
                 log_max_bytes: int = DEFAULT_LOG_MAX_BYTES, log_keep: int = DEFAULT_LOG_KEEP) -> None:
        self.name = name
        self.command = list(command)
        self.cwd = cwd
        self.env = dict(env or {})
        self.log_dir = Path(log_dir) if log_dir is not None else state_dir
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DriverError(f"{name}: cannot create the log directory {self.log_dir}: {exc.strerror or exc}") \
                from None
        self.pidfile = self.log_dir / f"{name}.pid"
        self.logfile = self.log_dir / f"{name}.log"
        self.log_max_bytes = max(1, int(log_max_bytes))
        self.log_keep = max(0, int(log_keep))
        self._proc: subprocess.Popen | None = None
        self._unlogged = False  # started without a log file: progress cannot be seen, so never "stalled"

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
            self.rotate()
            self._spawn()

    def _open_log(self):
        """The log file to hand the server, or DEVNULL when the log disk is full (never a failed start)."""
        try:
            free = shutil.disk_usage(self.log_dir).free
            if free < MIN_FREE_BYTES:
                raise OSError(errno.ENOSPC, f"only {free // 1024} KiB free")
            return open(self.logfile, "ab")
        except OSError as exc:
            log.warning("%s starts without a log file: %s is not writable (%s); free space there or set "
                        "residents.%s.driver.log_dir", self.name, self.logfile, exc.strerror or exc, self.name)
            return subprocess.DEVNULL

    def _spawn(self) -> None:
        out = self._open_log()
        self._unlogged = out is subprocess.DEVNULL
        try:
            self._proc = subprocess.Popen(
                self.command, cwd=self.cwd, env={**os.environ, **self.env}, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            raise DriverError(f"{self.name}: cannot run {self.command[0]!r}: {exc}") from exc
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        try:
            self.pidfile.write_text(str(self._proc.pid))
        except OSError as exc:  # it runs; only a hub restart cannot adopt it (this hub still holds it)
            self.pidfile.unlink(missing_ok=True)
            log.warning("%s: cannot write %s (%s): a restarted hub will not adopt this server", self.name,
                        self.pidfile, exc.strerror or exc)

    def rotate(self) -> bool:
        """Rotate the log once it passes its size: `.log` -> `.log.1` -> ... `.log.<keep>` (copy, then
        truncate: the server's append-mode descriptor then writes at the new, empty end)."""
        try:
            if self.logfile.stat().st_size <= self.log_max_bytes:
                return False
        except OSError:
            return False
        try:
            if self.log_keep:
                for i in range(self.log_keep - 1, 0, -1):
                    older = self.logfile.with_name(f"{self.logfile.name}.{i}")
                    if older.exists():
                        older.replace(self.logfile.with_name(f"{self.logfile.name}.{i + 1}"))
                shutil.copyfile(self.logfile, self.logfile.with_name(f"{self.logfile.name}.1"))
        except OSError as exc:
            log.warning("%s: cannot keep a copy of its log (%s); truncating it", self.name, exc.strerror or exc)
        with contextlib.suppress(OSError):
            os.truncate(self.logfile, 0)
        return True

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
        self.rotate()  # the monitor asks regularly: a cheap stat keeps the log bounded while it runs
        return self._pid() is not None

    async def output_since(self, since: float) -> str:
        if self._unlogged:
            return UNLOGGED
        try:
            if self.logfile.stat().st_mtime < since:
                return ""
        except OSError:
            return ""
        return await self.tail(5)

    async def tail(self, lines: int = 30) -> str:
        if self._unlogged:
            return UNLOGGED
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
