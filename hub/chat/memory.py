"""Conversation memory per (bridge, room, thread) in SQLite (core tables `conversations`, `messages`).

Only the user's text and the final answer are kept (never provider-specific tool traces), so a
conversation can move between the local model and Claude. `/compact` replaces the older turns with
a summary: the old conversation is closed and a new one starts with the summary and the newest turn.
Trimming (`fit`) is pure: system prompt and newest turns first, oldest dropped, to a token budget.
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING

from hub.chat.api import ConversationKey
from hub.chat.budget import COST_INSERT
from hub.llm.pricing import estimate_tokens
from hub.llm.types import Message

if TYPE_CHECKING:
    from hub.store import Store

MESSAGE_OVERHEAD = 4  # tokens of role markers per message, counted when trimming
ACTIVE = ("SELECT id, summary FROM conversations WHERE bridge=? AND room=? AND thread=? AND active=1 "
          "ORDER BY id DESC LIMIT 1")


class Memory:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db  # reads and single-statement writes; a turn is one `store.transaction()`
        self._ids: dict[ConversationKey, int] = {}

    async def load(self, key: ConversationKey, budget_tokens: int | None = None) -> tuple[str | None, list[Message]]:
        """(summary, messages oldest first) of the active conversation; with `budget_tokens`, only the
        newest messages that `fit` could keep within that budget (all of them without).

        One hop to the store's read thread (`store.read`) for the lookup, the summary and the messages together:
        each hop is a queue put, a thread wake-up and an event-loop wake-up (a turn made three of them).
        Reading only what can fit keeps a turn's reading bounded by the window, not by the length of
        the conversation (a turn used to read and wrap every message, also those `fit` then dropped)."""
        cid, summary, rows = await self.store.read(_read_active, key, self._ids.get(key), budget_tokens)
        if cid is None:
            return None, []
        self._ids[key] = cid
        return summary, [Message(r[0], r[1]) for r in rows]

    async def append_turn(self, key: ConversationKey, user_text: str, answer: str, *, route: str,
                          output_tokens: int, context_id: str, costs: list[tuple] = (),
                          extra: tuple[str, tuple] | None = None) -> None:
        """The user's message, the answer, the turn's cost rows (and `extra` SQL), in one transaction."""
        now = time.time()
        cid = self._ids.get(key)  # unknown: `_write_turn` looks it up inside the transaction
        messages = [("user", user_text, now, None, estimate_tokens(user_text), context_id),
                    ("assistant", answer, now, route, output_tokens, context_id)]
        try:
            self._ids[key] = await self.store.write(_write_turn, key, cid, messages, list(costs), extra)
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
        async with self.store.transaction() as tx:
            self._ids[key] = await tx.run(_write_turn, key, None, messages, [], None, summary)


def _write_turn(conn: sqlite3.Connection, key: ConversationKey, cid: int | None, messages: list[tuple],
                costs: list[tuple], extra: tuple[str, tuple] | None, summary: str | None = None) -> int:
    """Runs on the store's write thread, inside the transaction: the active conversation when `cid` is
    None (a new one when there is none, or when a summary replaces it, closing the old one), the
    messages, cost rows and `extra`; returns the conversation id."""
    if cid is None and summary is None:
        row = conn.execute(ACTIVE, (key.bridge, key.room, key.thread or "")).fetchone()
        cid = row[0] if row else None
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


def _read_active(conn: sqlite3.Connection, key: ConversationKey, cid: int | None,
                 budget_tokens: int | None = None) -> tuple[int | None, str | None, list]:
    """Runs on the store's read thread: (id, summary, [(role, content)...] oldest first) of the active
    conversation (of `cid` when it is known), or (None, None, []) when there is none."""
    if cid is None:
        row = conn.execute(ACTIVE, (key.bridge, key.room, key.thread or "")).fetchone()
    else:
        row = conn.execute("SELECT id, summary FROM conversations WHERE id=?", (cid,)).fetchone()
    if row is None:
        return None, None, []
    if budget_tokens is None:
        rows = conn.execute("SELECT role, content FROM messages WHERE conversation_id=? ORDER BY id",
                            (row[0],)).fetchall()
    else:  # newest first, read lazily: stops at the first message that cannot fit
        rows = newest(conn.execute("SELECT role, content FROM messages WHERE conversation_id=? ORDER BY id DESC",
                                   (row[0],)), budget_tokens)
    return row[0], row[1], rows


def newest(rows_newest_first, budget_tokens: int) -> list:
    """The newest (role, content) rows whose trimming cost (as in `fit`) adds up to at most
    `budget_tokens`, oldest first: `fit` never keeps an older message than these (its budget is
    the same, less the system prompt and the new text), so it trims them to the same result."""
    kept: list = []
    used = 0
    for r in rows_newest_first:
        used += estimate_tokens(r[1]) + MESSAGE_OVERHEAD
        if used > budget_tokens:
            break
        kept.append(r)
    kept.reverse()
    return kept


def fit(system: str, summary: str | None, history: list[Message], user_text: str, budget_tokens: int) -> list[Message]:
    """System prompt (+ summary), as many of the newest history messages as fit, the new user text."""
    system_text = system + (f"\n\nSummary of the earlier conversation:\n{summary}" if summary else "")
    used = estimate_tokens(system_text) + estimate_tokens(user_text)
    kept: list[Message] = []
    for message in reversed(history):
        cost = estimate_tokens(message.content) + MESSAGE_OVERHEAD
        if used + cost > budget_tokens:
            break
        kept.append(message)
        used += cost
    kept.reverse()
    while kept and kept[0].role != "user":  # start on a user message
        kept.pop(0)
    return [Message("system", system_text), *kept, Message("user", user_text)]
