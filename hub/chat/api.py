"""The chat API bridges and skills code against (`hub.chat` is a `ChatService`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hub.context import Context
from hub.jobs import Approver
from hub.registry import Permission


@dataclass(frozen=True)
class ConversationKey:
    bridge: str
    room: str
    thread: str | None = None


@dataclass
class TurnRequest:
    text: str
    context: Context
    conversation: ConversationKey
    room_policy: str = "auto"  # auto|local|cloud|local-only
    override: str | None = None  # "local"|"cloud" (from /local, /claude); "!local "/"!claude " prefixes parsed here
    grant: Permission = Permission.write  # which skills the model may call as tools
    caller_policy: str | None = None  # the caller's own policy (an MCP token's), see hub/privacy.py
    approver: Approver | None = None  # async (skill, params, ctx) -> bool, asked before a destructive tool runs
    request_id: str | None = None  # the message's stable id (e.g. its Matrix event): a replayed turn's tool
    #                                calls with side effects follow the jobs they started, never run twice


class ReplySink(Protocol):
    """A bridge implements this; the chat service drives it."""

    async def start(self) -> None: ...  # e.g. typing on

    async def delta(self, text: str) -> None: ...  # streamed text chunk

    async def notice(self, text: str) -> None: ...  # out-of-band info: queued with ETA, failover

    async def finish(self, text: str) -> None: ...  # the final full text

    async def fail(self, message: str) -> None: ...


@dataclass
class TurnOutcome:
    route: str
    reason: str
    text: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    error: str | None = None


@dataclass(frozen=True)
class BudgetState:
    spent_today_usd: float
    spent_month_usd: float
    daily_cap_usd: float
    monthly_cap_usd: float
    reserved_usd: float = 0.0  # worst case of cloud calls in flight today (pending cost rows)
    reserved_month_usd: float = 0.0  # the same, this month

    def allows(self, estimate_usd: float) -> bool:
        return (self.spent_today_usd + self.reserved_usd + estimate_usd <= self.daily_cap_usd
                and self.spent_month_usd + self.reserved_month_usd + estimate_usd <= self.monthly_cap_usd)

    def refusal(self, estimate_usd: float) -> str:
        """Why a call of `estimate_usd` is refused, in one line."""
        held = f", ${self.reserved_usd:.2f} held by calls in flight" if self.reserved_usd else ""
        if self.spent_today_usd + self.reserved_usd + estimate_usd > self.daily_cap_usd:
            return (f"the daily cloud budget is reached (${self.spent_today_usd:.2f} of "
                    f"${self.daily_cap_usd:.2f} spent today{held}, this call up to ${estimate_usd:.3f})")
        held = f", ${self.reserved_month_usd:.2f} held by calls in flight" if self.reserved_month_usd else ""
        return (f"the monthly cloud budget is reached (${self.spent_month_usd:.2f} of "
                f"${self.monthly_cap_usd:.2f} spent this month{held}, this call up to ${estimate_usd:.3f})")
