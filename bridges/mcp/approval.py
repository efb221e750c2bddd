"""Who approves a destructive MCP call: the person at the client (elicitation), or the fallback.

- The caller holds the owner role and the client can ask its user (it declared the elicitation
  capability, on a connection that still has server-to-client requests): the person is asked,
  with what will happen (the skill, its arguments, and for a publish where the site deploys and
  whether it pushes). Accept runs it; decline, cancel or silence (`mcp.approval_timeout_s`) denies.
- Otherwise the token's `approval` setting (`mcp.stdio_approval` for stdio) decides:
  `token` — the owner role is the approval, as a plain owner token always was;
  `matrix` — the owner approves each call in Matrix (✅/❌ on a notice in `mcp.approval_room`, or
  `matrix.announce_room`), which also lets a write token ask for a destructive call.
- Anyone else is refused before a job runs, with what would let them.

Approvals go through the core's approver hook, so the job row shows `waiting_approval` and the
answer is recorded as a job event.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from bridges.mcp.access import Caller
from hub.approval import Approval
from hub.context import Context
from hub.errors import HubError
from hub.registry import Permission, Skill

if TYPE_CHECKING:
    from hub.jobs import Approver

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """What to pass to `start_skill`, or why the call is refused."""

    grant: Permission  # with a refusal: below destructive, so the core refuses after validating the arguments
    approver: Approver | None = None
    refusal: str | None = None
    asked: asyncio.Event | None = None  # set once the approver has answered

    @property
    def approval(self) -> Approval:
        """The plan as the core's one approval mechanism: refused, asked, or the token's own grant."""
        if self.refusal is not None:
            return Approval.refuse(self.refusal)
        return Approval.ask(self.approver) if self.approver is not None else Approval.token()


def client_can_elicit(mcp_ctx: Any) -> bool:
    """The client declared elicitation, and this connection can carry a server-to-client request."""
    try:
        params = mcp_ctx.session.client_params
        if params is None or params.capabilities.elicitation is None:
            return False
        return not mcp_ctx._is_modern_protocol()
    except Exception:  # no session (e.g. called outside a request): cannot ask
        return False


def what_happens(hub: Any, skill: Skill, params: BaseModel) -> str:
    """The approval question: the skill, its arguments, and where its effects land."""
    args = params.model_dump(mode="json", exclude_none=True)
    shown = json.dumps(args, ensure_ascii=False)
    if len(shown) > 600:
        shown = shown[:600] + "…"
    lines = [f"{skill.name}: {skill.description}", f"Arguments: {shown}"]
    if skill.name == "publish_article":
        content = hub.config.skills.content
        if args.get("draft"):
            lines.append(f"Draft only: written under {content.blog_dir}, not built or deployed.")
        else:
            deploy = " ".join(content.deploy_command) or "no deploy command"
            push = "commits and pushes the site repository" if content.git_push else "commits only"
            lines.append(f"Publishes to the site at {content.blog_dir} (deploy: {deploy}); {push}.")
        if args.get("force"):
            lines.append("force=true replaces an existing article with the same slug.")
    elif skill.name == "restart_mcp":
        lines.append(f"Restarts the MCP server {args.get('target')!r}; its open sessions end.")
    return "\n".join(lines)


def plan_for(hub: Any, skill: Skill, caller: Caller, mcp_ctx: Any) -> Plan:
    if skill.permission is not Permission.destructive:
        return Plan(grant=caller.grant)
    config = hub.config.mcp
    if caller.is_owner and config.elicit and client_can_elicit(mcp_ctx):
        return _gated(Permission.destructive, _elicit(hub, mcp_ctx, config.approval_timeout_s))
    if caller.approval == "matrix" and caller.grant >= Permission.write:
        bridge, room = hub.extras.get("matrix"), config.approval_room or hub.config.matrix.announce_room
        if bridge is None or getattr(bridge, "approvals", None) is None or not room:
            why = "the Matrix bridge is not running in this hub" if bridge is None else \
                "no room is set for it (mcp.approval_room or matrix.announce_room)"
            return Plan(grant=min(caller.grant, Permission.write),
                        refusal=f"{skill.name} needs the owner's approval in Matrix, but {why}")
        return _gated(Permission.destructive, _in_matrix(bridge, room, caller))
    if caller.is_owner:
        return Plan(grant=Permission.destructive)  # an owner token is the approval
    hint = "" if caller.via in ("stdio", "cli") else \
        "; or set approval: matrix on this token so the owner can approve each call in Matrix"
    if caller.via == "stdio":
        hint = "; or set mcp.stdio_approval: matrix so the owner can approve each call in Matrix"
    return Plan(grant=min(caller.grant, Permission.write),
                refusal=caller.lacks("owner", f"{skill.name} (destructive)") + hint)


def _gated(grant: Permission, approver: Approver) -> Plan:
    asked = asyncio.Event()

    async def approve(skill: Skill, params: BaseModel, ctx: Context) -> bool:
        try:
            return await approver(skill, params, ctx)
        finally:
            asked.set()

    return Plan(grant=grant, approver=approve, asked=asked)


def _elicit(hub: Any, mcp_ctx: Any, timeout_s: float) -> Approver:
    async def approve(skill: Skill, params: BaseModel, ctx: Context) -> bool:
        from fastmcp.server.elicitation import AcceptedElicitation

        question = what_happens(hub, skill, params) + "\n\nRun it?"
        try:
            answer = await asyncio.wait_for(
                mcp_ctx.elicit(question, bool, response_title="Approve",
                               response_description="true runs it; false denies"), timeout_s)
        except TimeoutError:
            raise HubError(f"{skill.name} was not approved: no answer within {timeout_s:g} s") from None
        except Exception as exc:  # the client failed the request: not an approval
            raise HubError(f"{skill.name} was not approved: asking the client failed ({exc})") from None
        approved = isinstance(answer, AcceptedElicitation) and answer.data is True
        log.info("%s %s by the MCP client's user (%s)", skill.name, "approved" if approved else "denied",
                 type(answer).__name__)
        return approved

    return approve


def _in_matrix(bridge: Any, room: str, caller: Caller) -> Approver:
    async def approve(skill: Skill, params: BaseModel, ctx: Context) -> bool:
        what = f"{skill.name} (asked over MCP by {caller.name})"
        return await bridge.approvals.ask(room, None, what, params.model_dump(mode="json", exclude_none=True))

    return approve
