"""Retry timing (pure): exponential backoff, or the server's retry-after when it gives one."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

MAX_RETRY_AFTER_S = 60.0


def backoff(attempt: int, retry_after: float | None, *, base: float = 0.5, cap: float = 20.0) -> float:
    """Seconds to wait before retry number `attempt + 1`."""
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, MAX_RETRY_AFTER_S)
    return min(cap, base * (2**attempt))


def retry_after_from(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """`retry-after-ms`, `retry-after` seconds or an HTTP date; None when absent or unreadable."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - (now if now is not None else time.time()))
