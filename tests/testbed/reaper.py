"""End of session: stop every process this test session started and left behind.

Resident model servers deliberately outlive the hub (a hub restart adopts them), so tests that
start stand-ins as processes can leave them running. Each child inherits a per-session marker in
its environment; at the end of the session every process carrying it is stopped.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

MARKER = "SOVHUB_TEST_SESSION"


def mark_session() -> str:
    token = uuid.uuid4().hex
    os.environ[MARKER] = token
    return token


def _marked(token: str) -> list[int]:
    needle = f"{MARKER}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def reap(token: str, grace_s: float = 3.0) -> list[int]:
    """SIGTERM, then SIGKILL after `grace_s`, every leftover process of this session."""
    pids = _marked(token)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _marked(token):
        time.sleep(0.1)
    for pid in _marked(token):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return pids
