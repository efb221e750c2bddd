"""The memory guard: after a stop, wait until memory is really back before the next start.

On the GB10 a killed server's memory can stay held for 30-120 s; starting the next one too early
is how OOMs happen. Available memory comes from /proc/meminfo (MemAvailable) or a probe command
that prints GB (e.g. one that asks nvidia-smi).

Before measuring, an optional privileged helper drops the page cache: MemAvailable counts page
cache that CUDA on unified memory may not get back in time. A failing helper is logged and the
measurement goes on: dropping caches helps a start, it never blocks one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _drop_with_container(name: str, docker_host: str | None, timeout_s: float) -> str:
    """Start the one-shot container by name and wait for it to exit; '' or what went wrong.

    Only start and inspect, both addressed by name: what the Docker socket proxy allows."""
    from hub.dockerclient import connect

    client = connect(docker_host, timeout=30)
    try:
        client.api.start(name)
        deadline = time.monotonic() + timeout_s
        while True:
            state = client.api.inspect_container(name).get("State") or {}
            if state.get("Status") == "exited":
                code = state.get("ExitCode")
                return "" if code == 0 else f"{name} exited with {code}: {state.get('Error') or 'see docker logs'}"
            if time.monotonic() > deadline:
                return f"{name} still running after {timeout_s:.0f} s"
            time.sleep(0.2)
    finally:
        client.close()


class MemoryGuard:
    def __init__(self, *, enabled: bool = True, meminfo: str = "/proc/meminfo", command: list[str] | None = None,
                 timeout_s: float = 180.0, poll_s: float = 1.0, drop_caches: Any = None) -> None:
        self.enabled = enabled
        self.meminfo = Path(meminfo)
        self.command = list(command or [])
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.drop_caches = drop_caches  # hub.config.residents.DropCachesConfig | None
        self.last_drop: str | None = None  # '' after a good drop, else why it failed (None: never ran)

    async def drop(self) -> str:
        """Run the drop-caches helper once; '' when it worked, else the reason (also logged)."""
        cfg = self.drop_caches
        if cfg is None:
            return ""
        try:
            if cfg.container:
                problem = await asyncio.to_thread(_drop_with_container, cfg.container, cfg.docker_host, cfg.timeout_s)
            else:
                proc = await asyncio.create_subprocess_exec(*cfg.command, stdout=asyncio.subprocess.DEVNULL,
                                                            stderr=asyncio.subprocess.PIPE)
                try:
                    _, err = await asyncio.wait_for(proc.communicate(), cfg.timeout_s)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
                    err, proc.returncode = b"timed out", proc.returncode or -9
                problem = "" if proc.returncode == 0 else \
                    f"{cfg.command[0]} exited with {proc.returncode}: {err.decode(errors='replace').strip()[:200]}"
        except Exception as exc:  # Docker down, proxy refusal, missing command: report, never block a start
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            log.warning("dropping the page cache failed (measuring anyway): %s", problem)
        self.last_drop = problem
        return problem

    async def available_gb(self) -> float:
        if self.command:
            proc = await asyncio.create_subprocess_exec(*self.command, stdout=asyncio.subprocess.PIPE)
            out, _ = await proc.communicate()
            return float(out.decode().strip().split()[0])
        for line in self.meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / (1024 * 1024)  # kB -> GB (GiB)
        raise ValueError(f"no MemAvailable line in {self.meminfo}")

    def total_gb(self) -> float | None:
        try:
            for line in self.meminfo.read_text().splitlines():
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / (1024 * 1024)
        except (OSError, ValueError, IndexError):
            return None
        return None

    async def wait_for(self, gb: float) -> tuple[bool, float]:
        """Wait until `gb` is available; (True, waited_s) or (False, waited_s) after the timeout."""
        start = time.monotonic()
        if not self.enabled:
            return True, 0.0
        await self.drop()
        total = None if self.command else self.total_gb()
        if total is not None and total < gb:
            return True, 0.0  # this machine is smaller than the figure (stand-ins): nothing to wait for
        while True:
            try:
                if await self.available_gb() >= gb:
                    return True, time.monotonic() - start
            except (OSError, ValueError):
                return True, time.monotonic() - start  # no reading: do not block the pool forever
            if time.monotonic() - start >= self.timeout_s:
                return False, time.monotonic() - start
            await asyncio.sleep(self.poll_s)
