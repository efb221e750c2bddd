"""What a command handler may use: the hub, who asked, where to answer.

A bridge (Matrix, the demo's terminal chat) implements `CommandIO`; handlers never know which one
they talk to, so every command behaves the same everywhere (and answers inside a thread when the
bridge's IO is bound to one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hub.approval import grant_for_role
from hub.context import Context
from hub.registry import Permission

if TYPE_CHECKING:
    from hub.commands.settings import RoomSettings
    from hub.core import Hub
    from hub.jobs import Approver

ROLES = ("user", "owner")


class CommandIO(Protocol):
    async def reply(self, text: str) -> None:
        """Answer with markdown text."""

    async def job_state(self, state: str) -> None:
        """Mark the request: `started` (⏳), `succeeded` (✅) or `failed` (❌)."""

    async def progress(self, text: str) -> None:
        """One progress line, edited in place on each call."""

    async def send_file(self, path: Path, *, kind: str, caption: str) -> None:
        """Upload a result: kind is `image`, `audio` or `file`."""


# A chat turn driven by a command (/local, /claude): text plus an override of the route.
TurnRunner = Callable[[str, str | None], Awaitable[Any]]


@dataclass
class CommandEnv:
    hub: Hub
    context: Context
    io: CommandIO
    conversation: Any  # hub.chat.api.ConversationKey (kept loose: the chat service may be absent)
    role: str = "user"
    settings: RoomSettings | None = None
    approver: Approver | None = None
    run_turn: TurnRunner | None = None
    status_extra: Callable[[], dict[str, Any]] | None = None
    # A stable id of the request (e.g. "matrix:<event id>"): a skill command started with one gets a
    # job id derived from it, so a request replayed after a crash attaches to its job, never reruns it.
    request_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def grant(self) -> Permission:
        """Owners may run destructive skills (after approval); users up to write."""
        return grant_for_role(self.role)
