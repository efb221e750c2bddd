"""Who is calling and what they may do: tokens -> roles -> permission grants, tool annotations.

Pure functions and one token verifier; the server asks `current_caller()` on every call.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastmcp.server.auth import AccessToken, TokenVerifier
from fastmcp.server.dependencies import get_access_token
from mcp_types import ToolAnnotations

from hub.config.mcp import MCPConfig, MCPToken, bind_refusal, is_loopback
from hub.errors import ConfigError
from hub.registry import Permission

ROLE_GRANT: dict[str, Permission] = {
    "read": Permission.read,
    "write": Permission.write,
    "owner": Permission.destructive,
}


@dataclass(frozen=True)
class Caller:
    """The identity behind one MCP call: `name` becomes the Context's user."""

    name: str
    role: str
    via: str = "token"  # token | stdio | anonymous (token-less loopback HTTP) | cli
    policy: str | None = None  # the token's routing policy: "local-only" keeps its asks off the cloud
    approval: str = "token"  # destructive calls without elicitation: token (owner role) | matrix (owner approves)

    @property
    def grant(self) -> Permission:
        return ROLE_GRANT[self.role]

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"

    def lacks(self, role: str, what: str) -> str:
        """Why this caller may not do `what` (which needs `role`), and what would let it, per transport."""
        if self.via == "stdio":
            return (f"{what} needs role {role}; this stdio server runs with role {self.role} "
                    f"(mcp.stdio_role in the hub's config)")
        if self.via == "anonymous":
            return (f"{what} needs role {role}; callers without a token have role {self.role} "
                    f"(mcp.anonymous_role); configure mcp.tokens and connect with an owner or write token")
        if self.via == "cli":
            return f"{what} needs role {role}; this command runs with role {self.role}"
        article = "an" if role[0] in "aeiou" else "a"
        return f"{what} needs {article} {role} token (token {self.name!r} has role {self.role})"


def annotations_for(permission: Permission, *, open_world: bool = False) -> ToolAnnotations:
    """MCP hints from the permission level: read is safe to repeat, destructive says so."""
    return ToolAnnotations(
        read_only_hint=permission is Permission.read,
        destructive_hint=permission is Permission.destructive,
        idempotent_hint=permission is Permission.read,
        open_world_hint=open_world,
    )


def check_bind(config: MCPConfig) -> None:
    """Refuse to serve HTTP where other machines can reach it without a token."""
    if not config.tokens and not is_loopback(config.host):
        raise ConfigError(bind_refusal(config.host))


class RoleTokenVerifier(TokenVerifier):
    """Static bearer tokens from the config, compared in constant time; each maps to a role."""

    def __init__(self, tokens: list[MCPToken]) -> None:
        super().__init__()
        self._tokens = [(t.token.get_secret_value().encode(), t.name, t.role, t.policy, t.approval) for t in tokens]

    async def verify_token(self, token: str) -> AccessToken | None:
        given = token.encode()
        found = None
        for secret, name, role, policy, approval in self._tokens:
            if hmac.compare_digest(secret, given):
                found = (name, role, policy, approval)
        if found is None:
            return None
        name, role, policy, approval = found
        return AccessToken(token=token, client_id=name, scopes=[role],
                           claims={"name": name, "role": role, "policy": policy, "approval": approval})


def current_caller(default: Caller | None) -> Caller:
    """The caller of the running request: from its bearer token, else the transport's default."""
    token = get_access_token()
    if token is not None:
        claims = token.claims or {}
        return Caller(name=str(claims.get("name") or token.client_id), role=str(claims.get("role") or "read"),
                      policy=claims.get("policy"), approval=str(claims.get("approval") or "token"))
    if default is None:
        # Cannot happen behind the auth middleware; fail closed if it ever does.
        return Caller(name="unknown", role="read")
    return default
