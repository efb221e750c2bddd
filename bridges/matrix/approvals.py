"""Approvals by reaction: the bot asks, an owner reacts ✅ (run) or ❌ (deny); silence expires.

Only reactions from owners count; anyone else's reaction is ignored. The question message is edited
to show the outcome, so the room keeps a record of who approved what.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bridges.matrix.client import MatrixConnection
from bridges.matrix.format import edit_content, notice_content, with_relation

log = logging.getLogger(__name__)

APPROVE = {"✅", "✔️", "👍"}
DENY = {"❌", "✖️", "👎"}


@dataclass
class _Pending:
    room_id: str
    future: asyncio.Future[tuple[bool, str]]


def _normalise(key: str) -> str:
    return key.replace("\ufe0f", "")


class Approvals:
    def __init__(self, conn: MatrixConnection, is_owner: Callable[[str, str], bool],
                 timeout_s: float, on_sent: Callable[[str, str], Awaitable[None]] | None = None) -> None:
        self.conn = conn
        self.is_owner = is_owner
        self.timeout_s = timeout_s
        self.on_sent = on_sent
        self._pending: dict[str, _Pending] = {}

    @property
    def waiting(self) -> int:
        return len(self._pending)

    async def ask(self, room_id: str, relation: dict | None, what: str, params: dict) -> bool:
        shown = json.dumps(params, ensure_ascii=False, default=str)
        if len(shown) > 300:
            shown = shown[:300] + "…"
        hours = self.timeout_s / 3600
        expiry = f"{hours:g} h" if hours >= 1 else f"{self.timeout_s:g} s"
        text = (f"🔐 **{what}** needs an owner's approval: react ✅ to run it or ❌ to deny "
                f"(expires in {expiry}).\n\n`{shown}`")
        event_id = await self.conn.send(room_id, with_relation(notice_content(text), relation))
        if self.on_sent:
            await self.on_sent(event_id, room_id)
        future: asyncio.Future[tuple[bool, str]] = asyncio.get_running_loop().create_future()
        self._pending[event_id] = _Pending(room_id, future)
        try:
            approved, who = await asyncio.wait_for(future, self.timeout_s)
            outcome = f"✅ approved by {who}" if approved else f"❌ denied by {who}"
        except TimeoutError:
            approved, outcome = False, "⌛ expired without an answer"
        finally:
            self._pending.pop(event_id, None)
        try:
            await self.conn.send(room_id, edit_content(event_id, f"🔐 **{what}**: {outcome}"))
        except Exception:
            log.exception("could not mark approval %s", event_id)
        return approved

    def on_reaction(self, room_id: str, sender: str, target: str, key: str) -> bool:
        """Feed every reaction here; True when it decided a pending approval."""
        pending = self._pending.get(target)
        if pending is None or pending.room_id != room_id or pending.future.done():
            return False
        if not self.is_owner(sender, room_id):
            log.info("ignoring approval reaction from non-owner %s", sender)
            return False
        key = _normalise(key)
        if key in {_normalise(k) for k in APPROVE}:
            pending.future.set_result((True, sender))
        elif key in {_normalise(k) for k in DENY}:
            pending.future.set_result((False, sender))
        else:
            return False
        return True

    def cancel_all(self) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.cancel()
