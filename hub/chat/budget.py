"""Spend caps: what the cloud cost today and this month (UTC), from the `costs` table, calls in
flight included.

Every LLM call of every origin (chat, cron, MCP, skills) writes a cost row, so background and
scheduled turns count against the same caps. Caps are enforced by reservation, in the database:
before a cloud call its worst case (the prompt at the dearer of the input and cache-write prices
plus `max_tokens` at the output price) is inserted as a `pending` cost row by ONE conditional
INSERT (SQLite runs it under its write lock, so the check and the reservation are one step for
every process on the database: the hub, `sovhub mcp` over stdio, a CLI run). After the call the
row is settled to the real usage — also for a call that failed, broke mid-stream or was cancelled:
the tokens it produced are billed. A process killed mid-call leaves its worst case counted. So
at every moment the rows of the period >= what the provider will bill, and no interleaving of
calls passes a cap.
"""

from __future__ import annotations

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
    """One reservation: its pending cost row (worst case), settled once to the real usage."""

    __slots__ = ("row_id", "settled", "usd")

    def __init__(self, row_id: int, usd: float) -> None:
        self.row_id = row_id
        self.usd = usd
        self.settled = False


COST_INSERT = ("INSERT INTO costs(at, provider, model, input_tokens, output_tokens, cache_write_tokens, "
               "cache_read_tokens, usd, origin, context_id, room, client) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")

_STATE = ("SELECT COALESCE(SUM(CASE WHEN at >= :day AND pending = 0 THEN usd END), 0), "
          "COALESCE(SUM(CASE WHEN pending = 0 THEN usd END), 0), "
          "COALESCE(SUM(CASE WHEN at >= :day AND pending = 1 THEN usd END), 0), "
          "COALESCE(SUM(CASE WHEN pending = 1 THEN usd END), 0) FROM costs WHERE at >= :month")

# The check and the reservation in one statement: SQLite takes the write lock before the sums are read.
_RESERVE = ("INSERT INTO costs(at, provider, model, usd, origin, context_id, room, pending, client) "
            "SELECT :now, :provider, :model, :usd, :origin, :context, :room, 1, :client "
            "WHERE (SELECT COALESCE(SUM(usd), 0) FROM costs WHERE at >= :day) + :usd <= :daily "
            "AND (SELECT COALESCE(SUM(usd), 0) FROM costs WHERE at >= :month) + :usd <= :monthly")

_SETTLE = ("UPDATE costs SET input_tokens = ?, output_tokens = ?, cache_write_tokens = ?, cache_read_tokens = ?, "
           "usd = ?, pending = 0 WHERE id = ?")


class Ledger:
    """Reads spend, reserves and settles cloud calls, writes the other cost rows."""

    def __init__(self, db, caps: BudgetConfig, clock=time.time) -> None:
        self.db = db
        self.caps = caps
        self.clock = clock

    async def state(self) -> BudgetState:
        day, month = period_starts(self.clock())
        rows = await self.db.execute_fetchall(_STATE, {"day": day, "month": month})
        today, this_month, held_today, held_month = (float(x) for x in rows[0]) if rows else (0.0,) * 4
        return BudgetState(round(today, 6), round(this_month, 6), self.caps.daily_usd, self.caps.monthly_usd,
                           reserved_usd=round(held_today, 6), reserved_month_usd=round(held_month, 6))

    async def reserve(self, usd: float, *, provider: str, model: str, context: Context, room: str | None) -> Hold:
        """Reserve `usd` (a call's worst case) or raise BudgetExceeded; nothing is sent before this."""
        now = self.clock()
        day, month = period_starts(now)
        cursor = await self.db.execute(_RESERVE, {
            "now": now, "provider": provider, "model": model, "usd": usd, "origin": context.origin,
            "context": context.id, "room": room, "client": context.user, "day": day, "month": month,
            "daily": self.caps.daily_usd, "monthly": self.caps.monthly_usd})
        if cursor.rowcount != 1:
            state = await self.state()
            raise BudgetExceeded(f"cloud call not made: {state.refusal(usd)}")
        return Hold(cursor.lastrowid, usd)

    async def settle(self, hold: Hold, usage, usd: float) -> None:
        """The call is over (answered, failed or cancelled): its row becomes what it really cost."""
        if hold.settled:
            return
        await self.db.execute(_SETTLE, (usage.input_tokens, usage.output_tokens, usage.cache_write_tokens,
                                        usage.cache_read_tokens, usd, hold.row_id))
        hold.usd, hold.settled = usd, True

    def rows(self, calls: list[tuple[str, str, object, float]], context: Context, room: str | None) -> list[tuple]:
        """Cost rows for (provider, model, usage, usd) tuples, ready for `insert`; the context's user is the
        row's client (a Matrix user, an MCP or API token's name), so spend can be shown per client."""
        now = self.clock()
        return [(now, provider, model, u.input_tokens, u.output_tokens, u.cache_write_tokens, u.cache_read_tokens,
                 usd, context.origin, context.id, room, context.user) for provider, model, u, usd in calls]

    @staticmethod
    async def insert(db, rows: list[tuple]) -> None:
        if rows:
            await db.executemany(COST_INSERT, rows)


_BY_CLIENT = ("SELECT COALESCE(client, '(unknown)'), origin, COUNT(*), SUM(input_tokens), SUM(output_tokens), "
              "SUM(CASE WHEN at >= :day THEN usd ELSE 0 END), SUM(usd) FROM costs WHERE at >= :month "
              "GROUP BY 1, 2 ORDER BY 7 DESC, 3 DESC LIMIT :limit")


async def spend_by_client(db, now: float | None = None, limit: int = 50) -> list[dict]:
    """This month's model calls per client (a Matrix user, an MCP or API token's name) and origin:
    calls, tokens, spend today and this month, dearest first. Reservations in flight count (they
    are cost rows), so the picture never shows less than the caps see."""
    day, month = period_starts(now if now is not None else time.time())
    rows = await db.execute_fetchall(_BY_CLIENT, {"day": day, "month": month, "limit": limit})
    return [{"client": r[0], "origin": r[1], "calls": int(r[2]), "input_tokens": int(r[3] or 0),
             "output_tokens": int(r[4] or 0), "today_usd": round(float(r[5] or 0), 6),
             "month_usd": round(float(r[6] or 0), 6)} for r in rows]
