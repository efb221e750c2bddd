"""Publishing the same notes twice publishes once: a record per notes digest, written (and committed)
before the article reaches the site, completed after the run.

A crash can land between the site changing (article in place, deployed, committed) and the job's
success row; a caller who then publishes the same notes again gets the article that is already
there, not a second one. The record lives in the hub's `kv` table: `publish.notes:<sha256>` ->
the result so far, `done` once the run finished. It counts only while its article file exists, and
`force=true` publishes anyway.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

PREFIX = "publish.notes:"


def notes_key(notes: str, site_root: Path) -> str:
    digest = hashlib.sha256(f"{site_root.resolve()}\0{notes.strip()}".encode()).hexdigest()
    return PREFIX + digest[:40]


async def earlier(db, key: str) -> dict[str, Any] | None:
    """The earlier run's record for these notes while its article is still in the site."""
    rows = await db.execute_fetchall("SELECT value FROM kv WHERE key = ?", (key,))
    if not rows:
        return None
    record = json.loads(rows[0][0])
    return record if Path(record["result"]["article_path"]).is_file() else None


async def remember(db, key: str, job_id: str, result: dict[str, Any], *, done: bool) -> None:
    """Committed at once (not behind the store's write batch): it must be on disk before the site changes."""
    value = json.dumps({"job_id": job_id, "done": done, "result": result, "at": time.time()})
    await db.execute("INSERT INTO kv(key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                     "value=excluded.value, updated_at=excluded.updated_at", (key, value, time.time()))


async def forget(db, key: str) -> None:
    """The run failed before the site changed for good (it was restored): no record."""
    await db.execute("DELETE FROM kv WHERE key = ?", (key,))
