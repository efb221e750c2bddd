"""The memory guard: after a stop, wait until memory is really back before the next start.

On the GB10 a killed server's memory can stay held for 30-120 s; starting the next one too early
is how OOMs happen. Available memory comes from /proc/meminfo (MemAvailable) or a probe command
that prints GB (e.g. one that asks nvidia-smi).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path


class MemoryGuard:
    def __init__(self, *, enabled: bool = True, meminfo: str = "/proc/meminfo", command: list[str] | None = None,
                 timeout_s: float = 180.0, poll_s: float = 1.0) -> None:
        self.enabled = enabled
        self.meminfo = Path(meminfo)
        self.command = list(command or [])
        self.timeout_s = timeout_s
        self.poll_s = poll_s

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
