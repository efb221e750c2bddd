"""Conversation memory per (bridge, room, thread) in SQLite (core tables `conversations`, `messages`).

Only the user's text and the final answer are kept (never provider-specific tool traces), so a
conversation can move between the local model and Claude. `/compact` replaces the older turns with
a summary: the old conversation is closed and a new one starts with the summary and the newest turn.
Trimming (`fit`) is pure: system prompt and newest turns first, oldest dropped, to a token budget.
"""

from __future__ import annotations

import sqlite3
import time

from hub.chat.api import ConversationKey
from hub.chat.budget import COST_INSERT
from hub.llm.pricing import estimate_tokens
from hub.llm.types import Message
from hub.store.tx import atomically


class Memory:
    def __init__(self, db) -> None:
        self.db = db
        self._ids: dict[ConversationKey, int] = {}

    async def _active(self, key: ConversationKey) -> int | None:
        if key in self._ids:
            return self._ids[key]
        rows = await self.db.execute_fetchall(
            "SELECT id FROM conversations WHERE bridge=? AND room=? AND thread=? AND active=1 ORDER BY id DESC LIMIT 1",
            (key.bridge, key.room, key.thread or ""))
        if rows:
            self._ids[key] = rows[0][0]
            return rows[0][0]
        return None

    async def load(self, key: ConversationKey) -> tuple[str | None, list[Message]]:
        """(summary, messages oldest first) of the active conversation."""
        cid = await self._active(key)
        if cid is None:
            return None, []
        summary = await self.db.execute_fetchall("SELECT summary FROM conversations WHERE id=?", (cid,))
        rows = await self.db.execute_fetchall(
            "SELECT role, content FROM messages WHERE conversation_id=? ORDER BY id", (cid,))
        return (summary[0][0] if summary else None), [Message(r[0], r[1]) for r in rows]

    async def append_turn(self, key: ConversationKey, user_text: str, answer: str, *, route: str,
                          output_tokens: int, context_id: str, costs: list[tuple] = (),
                          extra: tuple[str, tuple] | None = None) -> None:
        """The user's message, the answer, the turn's cost rows (and `extra` SQL), in one transaction."""
        now = time.time()
        cid = await self._active(key)
        messages = [("user", user_text, now, None, estimate_tokens(user_text), context_id),
                    ("assistant", answer, now, route, output_tokens, context_id)]
        try:
            self._ids[key] = await atomically(self.db, _write_turn, key, cid, messages, list(costs), extra)
        except BaseException:
            self._ids.pop(key, None)
            raise

    async def new(self, key: ConversationKey) -> None:
        await self.db.execute("UPDATE conversations SET active=0 WHERE bridge=? AND room=? AND thread=?",
                              (key.bridge, key.room, key.thread or ""))
        self._ids.pop(key, None)

    async def restart_with_summary(self, key: ConversationKey, summary: str, keep: list[Message]) -> None:
        now = time.time()
        messages = [(m.role, m.content, now, None, estimate_tokens(m.content), None) for m in keep]
        self._ids.pop(key, None)
        self._ids[key] = await atomically(self.db, _write_turn, key, None, messages, [], None, summary)


def _write_turn(conn: sqlite3.Connection, key: ConversationKey, cid: int | None, messages: list[tuple],
                costs: list[tuple], extra: tuple[str, tuple] | None, summary: str | None = None) -> int:
    """Runs on the connection's thread: a new conversation when `cid` is None (closing the old one
    only when a summary replaces it), the messages, cost rows and `extra`; returns the conversation id."""
    if cid is None:
        if summary is not None:
            conn.execute("UPDATE conversations SET active=0 WHERE bridge=? AND room=? AND thread=?",
                         (key.bridge, key.room, key.thread or ""))
        cid = conn.execute(
            "INSERT INTO conversations(bridge, room, thread, created_at, summary, active) VALUES (?, ?, ?, ?, ?, 1)",
            (key.bridge, key.room, key.thread or "", time.time(), summary)).lastrowid
    conn.executemany(
        "INSERT INTO messages(conversation_id, role, content, at, route, tokens, context_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)", [(cid, *m) for m in messages])
    if costs:
        conn.executemany(COST_INSERT, costs)
    if extra is not None:
        conn.execute(*extra)
    return cid


def fit(system: str, summary: str | None, history: list[Message], user_text: str, budget_tokens: int) -> list[Message]:
    """System prompt (+ summary), as many of the newest history messages as fit, the new user text."""
    system_text = system + (f"\n\nSummary of the earlier conversation:\n{summary}" if summary else "")
    used = estimate_tokens(system_text) + estimate_tokens(user_text)
    kept: list[Message] = []
    for message in reversed(history):
        cost = estimate_tokens(message.content) + 4
        if used + cost > budget_tokens:
            break
        kept.append(message)
        used += cost
    kept.reverse()
    while kept and kept[0].role != "user":  # start on a user message
        kept.pop(0)
    return [Message("system", system_text), *kept, Message("user", user_text)]
