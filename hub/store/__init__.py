"""SQLite state (aiosqlite, WAL): jobs, conversations, schedules, costs, processed events, kv."""

from hub.store.db import Store

__all__ = ["Store"]
