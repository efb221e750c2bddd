"""Spend caps: what the cloud cost today and this month (UTC), from the `costs` table, plus what
calls in flight may still cost.

Every LLM call of every origin (chat, cron, MCP, skills) writes a cost row, so background and
scheduled turns count against the same caps. Caps are enforced by reservation: before a cloud call
its worst case (the prompt at the dearer of the input and cache-write prices plus `max_tokens` at
the output price) is reserved under one lock, against spend + every other reservation; after the
call the reservation is settled to the real cost (also for a call that failed or was cancelled
midway: the tokens it produced are billed), and it is released only once the cost row is stored.
So concurrent calls can never together pass a cap: at every moment, stored spend + reservations
>= what the provider will bill.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from hub.chat.api import BudgetState
from hub.config.llm import ModelPrice
from hub.config.routing import BudgetConfig
from hub.context import Context
from hub.errors import HubError


class BudgetExceeded(HubError):
    """A cloud call was refused before it was made: it would go over a spend cap."""


def period_starts(now: float) -> tuple[float, float]:
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp(), day.replace(day=1).timestamp()


def prompt_tokens_bound(text: str) -> int:
    """A generous count of the tokens in `text` for reservations: a third of its UTF-8 bytes.

    Four characters a token (what trimming uses) undercounts non-Latin scripts several times over
    (a CJK character is three bytes and about a token); bytes / 3 covers them and overstates English
    by about a third, which only holds back calls at the very edge of a cap until they settle.
    """
    return len(text.encode("utf-8", errors="replace")) // 3 + 1


def estimate_usd(input_tokens: int, max_tokens: int, price: ModelPrice | None) -> float:
    """The worst case of one call: every prompt token may be a cache write (dearer than input)."""
    if price is None:
        return 0.0
    per_input = max(price.input_per_mtok, price.cache_write_per_mtok)
    return (input_tokens * per_input + max_tokens * price.output_per_mtok) / 1_000_000


class Hold:
    """One reservation: the worst case until settled, then the real cost until its row is stored."""

    __slots__ = ("usd",)

    def __init__(self, usd: float) -> None:
        self.usd = usd

    def settle(self, usd: float) -> None:
        self.usd = usd


COST_INSERT = ("INSERT INTO costs(at, provider, model, input_tokens, output_tokens, cache_write_tokens, "
               "cache_read_tokens, usd, origin, context_id, room) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


class Ledger:
    """Reads spend and writes cost rows."""

    def __init__(self, db, caps: BudgetConfig, clock=time.time) -> None:
        self.db = db
        self.caps = caps
        self.clock = clock
        self._holds: set[Hold] = set()
        self._lock = asyncio.Lock()  # a check and its reservation are one step; so is a release

    async def state(self) -> BudgetState:
        async with self._lock:
            return await self._state()

    async def _state(self) -> BudgetState:
        day, month = period_starts(self.clock())
        rows = await self.db.execute_fetchall(
            "SELECT COALESCE(SUM(CASE WHEN at >= ? THEN usd END), 0), COALESCE(SUM(usd), 0) FROM costs WHERE at >= ?",
            (day, month))
        today, this_month = (float(rows[0][0]), float(rows[0][1])) if rows else (0.0, 0.0)
        reserved = sum(h.usd for h in self._holds)
        return BudgetState(round(today, 6), round(this_month, 6), self.caps.daily_usd, self.caps.monthly_usd,
                           reserved_usd=round(reserved, 6))

    async def reserve(self, usd: float) -> Hold:
        """Reserve `usd` (a call's worst case) or raise BudgetExceeded; nothing is sent before this."""
        async with self._lock:
            state = await self._state()
            if not state.allows(usd):
                raise BudgetExceeded(f"cloud call not made: {state.refusal(usd)}")
            hold = Hold(usd)
            self._holds.add(hold)
            return hold

    async def release(self, holds: list[Hold]) -> None:
        """The calls' cost rows are stored: their reservations stop counting (the rows count now)."""
        if not holds:
            return
        async with self._lock:
            for hold in holds:
                self._holds.discard(hold)

    def rows(self, calls: list[tuple[str, str, object, float]], context: Context, room: str | None) -> list[tuple]:
        """Cost rows for (provider, model, usage, usd) tuples, ready for `record`."""
        now = self.clock()
        return [(now, provider, model, u.input_tokens, u.output_tokens, u.cache_write_tokens, u.cache_read_tokens,
                 usd, context.origin, context.id, room) for provider, model, u, usd in calls]

    @staticmethod
    async def insert(db, rows: list[tuple]) -> None:
        if rows:
            await db.executemany(COST_INSERT, rows)
