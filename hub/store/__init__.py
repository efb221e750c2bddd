"""SQLite state (WAL): jobs, conversations, schedules, costs, processed events, kv.

`store.db` (aiosqlite) reads and writes single statements, `store.transaction()` writes several as
one, `store.writer` writes job bookkeeping behind the caller, `store.read(fn)` reads several in one
hop; when to use which, and the flush-before-read rule, are in DESIGN.md.
"""

from hub.store.db import Store

__all__ = ["Store"]
