"""Exactly-once: every message the bot must answer is written here before the sync token moves on.

Order of writes (no multi-statement transaction on the shared connection): events first
(`INSERT OR IGNORE`), then the sync token. A crash between the two replays the same sync, and the
inbox ignores what it already has. An event is `pending` until its answer is finished; after a
restart pending events are answered again, and the deterministic transaction ids of the reply make
the homeserver return the message it already has instead of a second one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

TOKEN_KEY = "matrix.sync_token"
CHUNK = 100  # rows per statement (well under SQLite's variable limit)


@dataclass(frozen=True)
class InboxEvent:
    event_id: str
    room_id: str
    sender: str
    ts: int
    source: dict[str, Any]

    @property
    def content(self) -> dict[str, Any]:
        return self.source.get("content") or {}


class Inbox:
    def __init__(self, store) -> None:
        self.store = store
        self.db = store.db

    async def sync_token(self) -> str | None:
        return await self.store.kv_get(TOKEN_KEY)

    async def save_token(self, token: str) -> None:
        await self.store.kv_set(TOKEN_KEY, token)

    async def add(self, events: list[InboxEvent]) -> list[InboxEvent]:
        """Record events; returns only the ones not seen before (in the given order).

        One query and one multi-row insert per sync, not a round trip (and a commit) per event: a
        burst of rooms would otherwise queue behind each other in the sync loop.
        """
        if not events:
            return []
        known: set[str] = set()
        ids = list(dict.fromkeys(ev.event_id for ev in events))
        for i in range(0, len(ids), CHUNK):
            part = ids[i:i + CHUNK]
            rows = await self.db.execute_fetchall(
                f"SELECT event_id FROM matrix_inbox WHERE event_id IN ({','.join('?' * len(part))})", part)
            known.update(r[0] for r in rows)
        fresh: list[InboxEvent] = []
        for ev in events:
            if ev.event_id not in known:
                known.add(ev.event_id)
                fresh.append(ev)
        now = time.time()
        for i in range(0, len(fresh), CHUNK):
            part = fresh[i:i + CHUNK]
            values: list[Any] = []
            for ev in part:
                values += [ev.event_id, ev.room_id, ev.sender, ev.ts, json.dumps(ev.source), now]
            await self.db.execute(
                "INSERT OR IGNORE INTO matrix_inbox(event_id, room_id, sender, ts, source, state, received_at)"
                " VALUES " + ",".join(["(?, ?, ?, ?, ?, 'pending', ?)"] * len(part)), values)
        return fresh

    async def finish(self, event_id: str, outcome: str = "answered") -> None:
        await self.db.execute("UPDATE matrix_inbox SET state='done', done_at=?, outcome=? WHERE event_id=?",
                              (time.time(), outcome, event_id))

    async def pending(self) -> list[InboxEvent]:
        rows = await self.db.execute_fetchall(
            "SELECT event_id, room_id, sender, ts, source FROM matrix_inbox WHERE state='pending' ORDER BY ts, rowid")
        return [InboxEvent(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    async def prune(self, keep_days: float = 14) -> None:
        """Answered rows are only needed for the homeserver's replay window; keep two weeks."""
        cutoff = time.time() - keep_days * 86400
        await self.db.execute("DELETE FROM matrix_inbox WHERE state='done' AND done_at < ?", (cutoff,))

    async def counts(self) -> dict[str, int]:
        rows = await self.db.execute_fetchall("SELECT state, COUNT(*) FROM matrix_inbox GROUP BY state")
        return {r[0]: r[1] for r in rows}

    async def source(self, event_id: str) -> dict[str, Any] | None:
        """The stored event (sender, content) of a message that passed through the inbox."""
        rows = await self.db.execute_fetchall("SELECT source FROM matrix_inbox WHERE event_id=?", (event_id,))
        return json.loads(rows[0][0]) if rows else None

    # -- events the bot sent (replies to the bot, threads it takes part in) -------------------------
    async def remember_sent(self, event_id: str, room_id: str, thread_root: str | None,
                            in_reply_to: str | None) -> None:
        await self.db.execute(
            "INSERT OR IGNORE INTO matrix_sent(event_id, room_id, thread_root, in_reply_to, at) VALUES (?, ?, ?, ?, ?)",
            (event_id, room_id, thread_root, in_reply_to, time.time()))

    async def is_ours(self, event_id: str) -> bool:
        rows = await self.db.execute_fetchall("SELECT 1 FROM matrix_sent WHERE event_id=?", (event_id,))
        return bool(rows)

    async def in_our_thread(self, room_id: str, thread_root: str) -> bool:
        rows = await self.db.execute_fetchall(
            "SELECT 1 FROM matrix_sent WHERE room_id=? AND (thread_root=? OR event_id=?) LIMIT 1",
            (room_id, thread_root, thread_root))
        return bool(rows)
