"""Conversation memory per (bridge, room, thread) in SQLite (core tables `conversations`, `messages`).

Only the user's text and the final answer are kept (never provider-specific tool traces), so a
conversation can move between the local model and Claude. `/compact` replaces the older turns with
a summary: the old conversation is closed and a new one starts with the summary and the newest turn.
Trimming (`fit`) is pure: system prompt and newest turns first, oldest dropped, to a token budget.
"""

from __future__ import annotations

import asyncio
import time

from hub.chat.api import ConversationKey
from hub.llm.pricing import estimate_tokens
from hub.llm.types import Message


class Memory:
    def __init__(self, db) -> None:
        self.db = db
        self._ids: dict[ConversationKey, int] = {}
        self._tx = asyncio.Lock()  # one transaction at a time on the shared connection (many rooms at once)

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

    async def _create(self, key: ConversationKey, summary: str | None = None) -> int:
        cur = await self.db.execute(
            "INSERT INTO conversations(bridge, room, thread, created_at, summary, active) VALUES (?, ?, ?, ?, ?, 1)",
            (key.bridge, key.room, key.thread or "", time.time(), summary))
        self._ids[key] = cur.lastrowid
        return cur.lastrowid

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
        from hub.chat.budget import Ledger

        now = time.time()
        async with self._tx:
            await self.db.execute("BEGIN")
            try:
                cid = await self._active(key) or await self._create(key)
                await self.db.executemany(
                    "INSERT INTO messages(conversation_id, role, content, at, route, tokens, context_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(cid, "user", user_text, now, None, estimate_tokens(user_text), context_id),
                     (cid, "assistant", answer, now, route, output_tokens, context_id)])
                await Ledger.insert(self.db, list(costs))
                if extra is not None:
                    await self.db.execute(*extra)
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                self._ids.pop(key, None)
                raise

    async def new(self, key: ConversationKey) -> None:
        await self.db.execute("UPDATE conversations SET active=0 WHERE bridge=? AND room=? AND thread=?",
                              (key.bridge, key.room, key.thread or ""))
        self._ids.pop(key, None)

    async def restart_with_summary(self, key: ConversationKey, summary: str, keep: list[Message]) -> None:
        await self.new(key)
        cid = await self._create(key, summary)
        now = time.time()
        await self.db.executemany(
            "INSERT INTO messages(conversation_id, role, content, at, tokens) VALUES (?, ?, ?, ?, ?)",
            [(cid, m.role, m.content, now, estimate_tokens(m.content)) for m in keep])


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
