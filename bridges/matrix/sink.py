"""A ReplySink that streams into ONE message edited in place (never one message per chunk).

The first chunk is sent at once (so the reader sees the answer start), later chunks are folded into
`m.replace` edits at most every `edit_interval_s`, and `finish` sends the final edit. An answer
longer than the size limit continues in a new message, split at a paragraph/line/word boundary.
Transaction ids of each part's first message and of its final edit derive from the question's
event id: if the bot dies mid-answer and answers again after a restart, the homeserver returns the
events it already has instead of posting duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from bridges.matrix.client import MatrixConnection
from bridges.matrix.format import edit_content, notice_content, split_text, with_relation

log = logging.getLogger(__name__)

OnSent = Callable[[str], Awaitable[None]]
TYPING_DELAY_S = 0.4


class MatrixReplySink:
    def __init__(self, conn: MatrixConnection, room_id: str, relation: dict | None, txn_base: str, *,
                 edit_interval_s: float = 0.8, max_chars: int = 12000, on_sent: OnSent | None = None) -> None:
        self.conn = conn
        self.room_id = room_id
        self.relation = relation
        self.txn_base = txn_base
        self.interval = edit_interval_s
        self.max_chars = max_chars
        self.on_sent = on_sent
        self.text = ""
        self.note = ""
        self.message_ids: list[str] = []
        self.shown: list[str] = []
        self.edits = 0
        self.finished = False
        self._last_render = 0.0
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task | None = None
        self._typing: asyncio.Task | None = None
        self._typing_on = False
        self.first_send: tuple[float, float] | None = None  # perf_counter around the first message's send

    # -- ReplySink ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Typing starts only if the answer does not begin at once: a quick answer costs no extra requests."""
        self._typing = asyncio.create_task(self._keep_typing())

    async def delta(self, text: str) -> None:
        if self.finished or not text:
            return
        self.text += text
        if not self.message_ids:
            if self.text.strip():
                await self._render(final=False)
            return
        if self._timer is not None and not self._timer.done():
            return  # an edit is already scheduled; it will show this chunk too
        due = self._last_render + self.interval - time.monotonic()
        if due <= 0:
            await self._render(final=False)
        else:
            self._timer = asyncio.create_task(self._render_later(due))

    async def notice(self, text: str) -> None:
        """Out-of-band info: shown in the message until the answer replaces it."""
        if self.finished:
            return
        self.note = text
        if not self.message_ids or not self.text:
            await self._render(final=False)

    async def finish(self, text: str) -> None:
        self._stop_timers()
        self.text = text if text else self.text
        self.note = ""
        await self._render(final=True)
        self.finished = True
        await self._typing_off()

    async def fail(self, message: str) -> None:
        self._stop_timers()
        self.note = ""
        self.text = (self.text.rstrip() + "\n\n" if self.text.strip() else "") + f"⚠️ {message}"
        await self._render(final=True)
        self.finished = True
        await self._typing_off()

    # -- rendering -----------------------------------------------------------------------------------
    def _visible(self, final: bool) -> str:
        text = self.text
        if self.note and not final:
            text = f"{text}\n\n_{self.note}_" if text.strip() else f"_{self.note}_"
        return text or "…"

    async def _render(self, final: bool) -> None:
        async with self._lock:
            parts = split_text(self._visible(final), self.max_chars)
            for i, part in enumerate(parts):
                if i >= len(self.message_ids):
                    content = with_relation(notice_content(part), self.relation)
                    t0 = time.perf_counter()
                    event_id = await self.conn.send(self.room_id, content, txn_id=f"{self.txn_base}.p{i}")
                    if i == 0:
                        self.first_send = (t0, time.perf_counter())
                    self.message_ids.append(event_id)
                    self.shown.append(part)
                    if self.on_sent:
                        await self.on_sent(event_id)
                elif self.shown[i] != part:
                    txn = f"{self.txn_base}.p{i}.final" if final else None
                    await self.conn.send(self.room_id, edit_content(self.message_ids[i], part), txn_id=txn)
                    self.shown[i] = part
                    self.edits += 1
            self._last_render = time.monotonic()

    async def _render_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if not self.finished:
            try:
                await self._render(final=False)
            except Exception:
                log.exception("streaming edit failed in %s", self.room_id)

    async def _keep_typing(self) -> None:
        """Typing only while nothing is shown yet: once the first message is sent (or on its way),
        the streaming edits are the sign of life, and a busy homeserver gets no extra requests."""
        await asyncio.sleep(TYPING_DELAY_S)
        while not self.finished and not self.message_ids and not self._lock.locked():
            self._typing_on = True
            await self.conn.typing(self.room_id, True)
            await asyncio.sleep(20)

    def _stop_timers(self) -> None:
        for task in (self._timer, self._typing):
            if task is not None and not task.done():
                task.cancel()
        self._timer = self._typing = None

    async def _typing_off(self) -> None:
        if self._typing_on:
            self._typing_on = False
            with contextlib.suppress(Exception):
                await self.conn.typing(self.room_id, False)

    async def close(self) -> None:
        self._stop_timers()
        await self._typing_off()
