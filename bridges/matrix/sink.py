"""A ReplySink that streams into ONE message edited in place (never one message per chunk).

Timing. Nothing is sent for the first `edit_interval_s` after the first chunk: an answer that is
complete by then is ONE event (notifications and room previews show the answer, not a first
token). Longer answers show their first flush's text, then `m.replace` edits at most every
`edit_interval_s`, then the final edit — skipped when the last edit already shows the final text.
A scheduled edit that is already on its way is awaited, never cancelled (a cancelled send still
reaches the homeserver and would make the final edit a duplicate). An answer longer than the size
limit continues in a new message, split at a paragraph/line/word boundary.

Crash safety. Every event has a transaction id derived from the question's event id and its place
in the answer (`<base>.p<part>` for a part's message, `….e<n>` for the n-th edit, `….final`), so a
send retried by the client is deduplicated by the homeserver. An answer replayed after a crash
(`replay=True`) does not stream: at the end it sends each part's message with the same id (the
homeserver returns the message it already has) and then one complete edit with a FRESH id. A
replay never re-sends the old ids of edits, whose dedup would return an older event than the
partial edits before it — the newest edit a client shows is always the complete answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from bridges.matrix.client import MatrixConnection
from bridges.matrix.format import edit_content, message_content, split_text, with_relation

log = logging.getLogger(__name__)

OnSent = Callable[[str], Awaitable[None]]
TYPING_DELAY_S = 0.4


class MatrixReplySink:
    def __init__(self, conn: MatrixConnection, room_id: str, relation: dict | None, txn_base: str, *,
                 edit_interval_s: float = 0.8, max_chars: int = 12000, on_sent: OnSent | None = None,
                 msgtype: str = "m.notice", mentions: list[str] | None = None, replay: bool = False) -> None:
        self.conn = conn
        self.room_id = room_id
        self.relation = relation
        self.txn_base = txn_base
        self.interval = edit_interval_s
        self.max_chars = max_chars
        self.on_sent = on_sent
        self.msgtype = msgtype
        self.mentions = mentions  # user ids the first message notifies (`m.mentions`), e.g. the asker
        self.replay = replay
        self.text = ""
        self.note = ""
        self.message_ids: list[str] = []
        self.shown: list[str] = []
        self.edits = 0
        self.finished = False
        self._last_render = 0.0
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task | None = None
        self._timer_sending = False
        self._typing: asyncio.Task | None = None
        self._typing_on = False
        self.first_send: tuple[float, float] | None = None  # perf_counter around the first message's send

    # -- ReplySink ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Typing starts only if no text arrives at once: a quick answer costs no extra requests."""
        if self._typing is None and not self.finished:
            self._typing = asyncio.create_task(self._keep_typing())

    async def delta(self, text: str) -> None:
        if self.finished or not text:
            return
        self.text += text
        if self.replay or not self.text.strip():
            return  # a replay shows only the complete answer
        if self._timer is not None and not self._timer.done():
            return  # a flush is already scheduled; it will show this chunk too
        if not self.message_ids:
            due = self.interval  # the first flush: a quick answer stays one event
        else:
            due = self._last_render + self.interval - time.monotonic()
        self._timer = asyncio.create_task(self._render_later(max(0.0, due)))

    async def notice(self, text: str) -> None:
        """Out-of-band info (queued with an ETA, failover): shown until the answer replaces it."""
        if self.finished or self.replay:
            return
        self.note = text
        if not self.message_ids or not self.text:
            await self._settle_timer()
            await self._render(final=False)

    async def finish(self, text: str) -> None:
        if self.finished:
            return
        await self._settle_timer()
        self.text = text if text else self.text
        self.note = ""
        await self._render(final=True)
        self.finished = True
        await self._typing_off()

    async def fail(self, message: str) -> None:
        if self.finished:
            return
        await self._settle_timer()
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
                    content = with_relation(message_content(part, self.msgtype), self.relation)
                    if self.mentions and i == 0:
                        content["m.mentions"] = {"user_ids": list(self.mentions)}
                    t0 = time.perf_counter()
                    event_id = await self.conn.send(self.room_id, content, txn_id=f"{self.txn_base}.p{i}")
                    if i == 0:
                        self.first_send = (t0, time.perf_counter())
                    self.message_ids.append(event_id)
                    self.shown.append(part)
                    if self.on_sent:
                        await self.on_sent(event_id)
                    if not self.replay:
                        continue
                    # A replay's message may be one the homeserver already had (a partial answer):
                    # the complete text follows as an edit with a fresh id, newer than any old edit.
                    txn = f"{self.txn_base}.p{i}.replay.{uuid.uuid4().hex[:12]}"
                elif self.shown[i] != part:
                    self.edits += 1
                    txn = f"{self.txn_base}.p{i}.final" if final else f"{self.txn_base}.p{i}.e{self.edits}"
                else:
                    continue  # already shows this text: no duplicate edit
                await self.conn.send(self.room_id, edit_content(self.message_ids[i], part, self.msgtype),
                                     txn_id=txn)
                self.shown[i] = part
            self._last_render = time.monotonic()

    async def _render_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.finished:
            return
        self._timer_sending = True  # from here on the send is awaited, never cancelled
        try:
            await self._render(final=False)
        except Exception:
            log.exception("streaming edit failed in %s", self.room_id)
        finally:
            self._timer_sending = False

    async def _settle_timer(self) -> None:
        """Before the final render: a flush still waiting is dropped, one already sending finishes."""
        timer, self._timer = self._timer, None
        if timer is None or timer.done():
            return
        if self._timer_sending:
            await asyncio.shield(timer)
        else:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer

    async def _keep_typing(self) -> None:
        """Typing only while nothing is on its way yet: once text streams in, the first message
        follows within one interval, and a busy homeserver gets no extra requests."""
        await asyncio.sleep(TYPING_DELAY_S)
        while not self.finished and not self.message_ids and not self._lock.locked() and (
                self.replay or not self.text.strip()):
            self._typing_on = True
            await self.conn.typing(self.room_id, True)
            await asyncio.sleep(20)

    def _stop_timers(self) -> None:
        for task in (self._timer, self._typing):
            if task is not None and not task.done():
                task.cancel()
        self._timer = self._typing = None

    async def _typing_off(self) -> None:
        if self._typing is not None and not self._typing.done():
            self._typing.cancel()
        if self._typing_on:
            self._typing_on = False
            with contextlib.suppress(Exception):
                await self.conn.typing(self.room_id, False)

    async def close(self) -> None:
        self._stop_timers()
        await self._typing_off()
