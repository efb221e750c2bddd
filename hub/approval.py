"""How a destructive skill run is approved: decided by the caller, enforced once by the job manager.

Three modes, one per kind of caller:
- `ask(approver)` — interactive: a person answers (✅/❌ in chat, the terminal's prompt, MCP
  elicitation, the owner in Matrix for an MCP token); the job waits in `waiting_approval` and the
  answer is a job event.
- `token()` — the caller's credential is the approval (an owner token, the CLI's `--yes`, the owner
  role with no interactive channel): it runs when the grant reaches `destructive`.
- `refuse(reason)` — the caller may not approve it: the job ends `refused` with that reason, before
  anything runs.
Skills below `destructive` need no approval; the mode is ignored for them. The grant that a chat
role carries is defined once, here (`grant_for_role`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from hub.registry import Permission

if TYPE_CHECKING:
    from pydantic import BaseModel

    from hub.context import Context
    from hub.registry import Skill

Approver = Callable[["Skill", "BaseModel", "Context"], Awaitable[bool]]


class Mode(StrEnum):
    interactive = "interactive"
    token = "token"
    refused = "refused"


@dataclass(frozen=True)
class Approval:
    """One caller's answer to "who approves a destructive run"; build it with ask/token/refuse."""

    mode: Mode
    approver: Approver | None = None
    reason: str = ""

    @classmethod
    def ask(cls, approver: Approver) -> Approval:
        return cls(Mode.interactive, approver=approver)

    @classmethod
    def token(cls) -> Approval:
        return cls(Mode.token)

    @classmethod
    def refuse(cls, reason: str) -> Approval:
        return cls(Mode.refused, reason=reason)

    @classmethod
    def of(cls, approval: Approval | None, approver: Approver | None) -> Approval:
        """`approver=` is shorthand for `ask(approver)`; with neither, the grant is the approval."""
        if approval is not None and approver is not None:
            raise ValueError("pass approval= or approver=, not both")
        if approval is not None:
            return approval
        return cls.ask(approver) if approver is not None else cls.token()


def grant_for_role(role: str | None) -> Permission:
    """Owners may run destructive skills (after approval); every other chat user up to write."""
    return Permission.destructive if role == "owner" else Permission.write
