"""Storage health: every failed SQLite write is counted and the last one kept, for `/status` and `/metrics`.

A full disk or a lock held too long must not be one log line nobody reads: the writers report
here, the status surfaces show the state (`ok` / `failing` / `full`) with the real SQLite error,
and the first successful write afterwards clears it (the error count stays, it is a counter).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

# SQLite result codes that pass once the disk has room again or a lock is released: the write is retried.
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN = 5, 6, 10, 13, 14
TRANSIENT = frozenset({SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN})


def error_code(exc: BaseException) -> int | None:
    """The primary SQLite result code of an exception (None when it is not a SQLite error)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        if isinstance(exc, OSError) and exc.errno == 28:
            return SQLITE_FULL
        return None
    return int(code) & 0xFF


def is_full(exc: BaseException) -> bool:
    """True for "database or disk is full" (SQLite) and ENOSPC (the file system)."""
    return error_code(exc) == SQLITE_FULL or "database or disk is full" in str(exc)


def is_transient(exc: BaseException) -> bool:
    """A write that failed for room or a lock, not for what it says: worth retrying as is."""
    code = error_code(exc)
    if code is None:
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
    return code in TRANSIENT


def describe(exc: BaseException) -> str:
    """The message a person sees: "storage full" first when it is, then SQLite's own words."""
    text = str(exc) or type(exc).__name__
    return f"storage full ({text})" if is_full(exc) else text


@dataclass
class StorageHealth:
    """Shared by the store's connections; read by `hub.status()` and the metrics."""

    errors_total: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    failing: bool = False
    full: bool = False
    where: str | None = None
    _clock: Any = field(default=time.time, repr=False)

    def failed(self, exc: BaseException, where: str) -> None:
        self.errors_total += 1
        self.last_error = describe(exc)
        self.last_error_at = self._clock()
        self.failing = True
        self.full = is_full(exc)
        self.where = where

    def ok(self) -> None:
        self.failing = False
        self.full = False

    @property
    def state(self) -> str:
        return "full" if self.full else "failing" if self.failing else "ok"

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state, "errors_total": self.errors_total}
        if self.last_error is not None:
            out.update(last_error=self.last_error, last_error_at=self.last_error_at, where=self.where)
        return out

    def line(self) -> str:
        """One line for chat `/status`."""
        if self.state == "ok":
            extra = f" ({self.errors_total} failed writes since start, recovered)" if self.errors_total else ""
            return f"ok{extra}"
        return f"{self.state}: {self.where} failed: {self.last_error} ({self.errors_total} failed writes)"
