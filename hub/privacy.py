"""The privacy gate: the one place that decides whether a request may reach the cloud.

A policy can come from five places: the hub's `routing.default_policy`, a room pinned in
`routing.rooms`, the room's own setting (`/model`), the caller (an MCP token's `policy`) and the
Context that caused the request (a tool call inside a local-only turn, a job a local-only turn
started). `local-only` from ANY of them wins over everything else, explicit choices included
(`/claude`, `!claude`, MCP `ask(route="cloud")`): the rule is monotone, so adding a source can make
a request more private, never less.

`scope()` resolves the policy of a request and marks its Context local-only when it is; the mark is
sticky (child contexts and the jobs they start keep it, also across restarts). The cloud provider
calls `check()` before every request it sends, so a caller that forgot to ask still cannot reach
the cloud with a local-only context, and the hub-wide default is enforced even without `scope()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hub.context import Context
from hub.errors import HubError

LOCAL_ONLY = "local-only"
POLICIES = ("auto", "local", "cloud", LOCAL_ONLY)


class CloudRefused(HubError):
    """The privacy gate refused a cloud call: the request is local-only. Nothing was sent."""


@dataclass(frozen=True)
class Verdict:
    """The effective policy of one request and, when it is local-only, where that came from."""

    policy: str
    source: str | None = None  # default | config-room | room | caller | context (None: auto everywhere)

    @property
    def local_only(self) -> bool:
        return self.policy == LOCAL_ONLY

    def refusal(self, asked: str = "Claude") -> str:
        """One line: why the cloud is refused here and how the policy is changed."""
        how = {
            "room": "the room's owner can change that with `/model auto`",
            "config-room": "the hub's owner can change that in `routing.rooms` of the config",
            "default": "the hub's owner can change that with `routing.default_policy` in the config",
            "caller": "the hub's owner can change the caller's `policy` (`mcp.tokens`, `mcp.stdio_policy`)",
            "context": "it was started by a local-only request",
        }.get(self.source or "", "the hub's owner can change the routing policy")
        where = {"caller": "This caller is local-only", "context": "This request is local-only",
                 "default": "This hub is local-only"}.get(self.source or "", "This room is local-only")
        return f"{where}, so nothing was sent to {asked}; {how}."


def resolve(*, default: str, pinned: str | None = None, room: str | None = None, caller: str | None = None,
            context: Context | None = None) -> Verdict:
    """The effective policy. Local-only from any source wins; otherwise the most specific non-auto
    choice does (room setting > config pin > caller > default)."""
    marks: Iterable[tuple[str | None, str]] = (
        (context.privacy if context is not None else None, "context"), (caller, "caller"),
        (room, "room"), (pinned, "config-room"), (default, "default"))
    for policy, source in marks:
        if policy == LOCAL_ONLY:
            return Verdict(LOCAL_ONLY, source)
    for policy, source in ((room, "room"), (pinned, "config-room"), (caller, "caller"), (default, "default")):
        if policy and policy != "auto":
            return Verdict(policy, source)
    return Verdict("auto")


class PrivacyGate:
    """Built once from `routing:`; the chat service scopes requests, the cloud provider checks them."""

    def __init__(self, default_policy: str = "auto", rooms: dict[str, str] | None = None) -> None:
        self.default_policy = default_policy
        self.rooms = dict(rooms or {})

    @classmethod
    def from_config(cls, config) -> PrivacyGate:
        return cls(config.routing.default_policy, config.routing.rooms)

    def verdict(self, context: Context | None, *, room: str | None = None, room_policy: str | None = None,
                caller_policy: str | None = None) -> Verdict:
        return resolve(default=self.default_policy, pinned=self.rooms.get(room) if room else None,
                       room=room_policy, caller=caller_policy, context=context)

    def scope(self, context: Context, *, room: str | None = None, room_policy: str | None = None,
              caller_policy: str | None = None) -> tuple[Context, Verdict]:
        """The request's verdict, and its context marked local-only when it is."""
        found = self.verdict(context, room=room, room_policy=room_policy, caller_policy=caller_policy)
        if found.local_only and context.privacy != LOCAL_ONLY:
            context = context.restricted()
        return context, found

    def check(self, context: Context | None) -> None:
        """Called by the cloud provider before every request: raises CloudRefused, never sends.

        Fails closed: a call without a context is refused (nobody can say whose data it carries).
        """
        if context is None:
            raise CloudRefused("a cloud call without a request context was refused (nothing was sent)")
        found = self.verdict(context)
        if found.local_only:
            raise CloudRefused(found.refusal())
