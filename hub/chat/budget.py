"""Spend caps: what the cloud cost today and this month (UTC), from the `costs` table.

Every LLM call of every origin (chat, cron, MCP, skills) writes a cost row, so background and
scheduled turns count against the same caps. Calls are checked before they are made, with a
conservative estimate (the whole prompt at the input price plus `max_tokens` at the output price).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from hub.chat.api import BudgetState
from hub.config.llm import ModelPrice
from hub.config.routing import BudgetConfig
from hub.context import Context


def period_starts(now: float) -> tuple[float, float]:
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp(), day.replace(day=1).timestamp()


def estimate_usd(input_tokens: int, max_tokens: int, price: ModelPrice | None) -> float:
    if price is None:
        return 0.0
    return (input_tokens * price.input_per_mtok + max_tokens * price.output_per_mtok) / 1_000_000


COST_INSERT = ("INSERT INTO costs(at, provider, model, input_tokens, output_tokens, cache_write_tokens, "
               "cache_read_tokens, usd, origin, context_id, room) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


class Ledger:
    """Reads spend and writes cost rows."""

    def __init__(self, db, caps: BudgetConfig, clock=time.time) -> None:
        self.db = db
        self.caps = caps
        self.clock = clock

    async def state(self) -> BudgetState:
        day, month = period_starts(self.clock())
        rows = await self.db.execute_fetchall(
            "SELECT COALESCE(SUM(CASE WHEN at >= ? THEN usd END), 0), COALESCE(SUM(usd), 0) FROM costs WHERE at >= ?",
            (day, month))
        today, this_month = (float(rows[0][0]), float(rows[0][1])) if rows else (0.0, 0.0)
        return BudgetState(round(today, 6), round(this_month, 6), self.caps.daily_usd, self.caps.monthly_usd)

    def rows(self, calls: list[tuple[str, str, object, float]], context: Context, room: str | None) -> list[tuple]:
        """Cost rows for (provider, model, usage, usd) tuples, ready for `record`."""
        now = self.clock()
        return [(now, provider, model, u.input_tokens, u.output_tokens, u.cache_write_tokens, u.cache_read_tokens,
                 usd, context.origin, context.id, room) for provider, model, u, usd in calls]

    @staticmethod
    async def insert(db, rows: list[tuple]) -> None:
        if rows:
            await db.executemany(COST_INSERT, rows)
