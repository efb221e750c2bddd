"""`mcp:` the MCP server (streamable HTTP in `sovhub run`, stdio in `sovhub mcp`) and its bearer tokens."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from hub.config.base import Section

MIN_TOKEN_LENGTH = 16


def is_loopback(host: str) -> bool:
    """True for names that only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MCPToken(Section):
    name: str = Field(description="who holds the token: the `user` of every call made with it")
    token: SecretStr
    role: Literal["read", "write", "owner"] = "read"
    policy: Literal["auto", "local-only"] = Field(
        "auto", description="local-only: nothing asked with this token ever reaches the cloud (e.g. Vibe's token)")
    approval: Literal["token", "matrix"] = Field(
        "token", description="destructive calls when the client cannot ask its user (no elicitation): token = an "
        "owner token is the approval; matrix = the owner approves each call in Matrix (write tokens may ask too)")

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"too short: use at least {MIN_TOKEN_LENGTH} characters (`sovhub mcp token` makes one)")
        return value


class MCPConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8002, ge=0, le=65535)
    path: str = "/mcp"
    tokens: list[MCPToken] = Field(default_factory=list)
    call_wait_s: float = Field(30, gt=0, description="a tool call waits this long, then returns the job id")
    anonymous_role: Literal["read", "write"] = Field(
        "write", description="role of HTTP callers when no tokens are configured (loopback only)")
    stdio_role: Literal["read", "write", "owner"] = Field(
        "write", description="role of the client that spawned `sovhub mcp` (stdio has no token)")
    stdio_policy: Literal["auto", "local-only"] = Field(
        "auto", description="like tokens[].policy, for the stdio client: local-only keeps its asks off the cloud")
    stdio_approval: Literal["token", "matrix"] = Field(
        "token", description="like tokens[].approval, for the stdio client (token = stdio_role owner suffices)")
    elicit: bool = Field(True, description="ask the person in the client before a destructive call, when the "
                                           "client supports elicitation")
    approval_timeout_s: float = Field(600, gt=0, description="how long an approval question waits for an answer")
    approval_room: str | None = Field(None, description="Matrix room for MCP approvals; default: matrix.announce_room")
    allowed_hosts: list[str] = Field(
        default_factory=list, description="extra Host header values accepted (a reverse proxy's name)")
    allowed_origins: list[str] = Field(default_factory=list, description="browser origins accepted")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or value.rstrip("/") == "":
            raise ValueError("must start with / and name a path, e.g. /mcp")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _safe(self) -> MCPConfig:
        names = [t.name for t in self.tokens]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"token names must be unique: {', '.join(dupes)}")
        secrets = [t.token.get_secret_value() for t in self.tokens]
        if len(set(secrets)) != len(secrets):
            raise ValueError("two tokens have the same value")
        if self.enabled and not self.tokens and not is_loopback(self.host):
            raise ValueError(bind_refusal(self.host))
        return self


def bind_refusal(host: str) -> str:
    return (f"mcp.host is {host}, which other machines can reach, but mcp.tokens is empty: "
            "add a token (`sovhub mcp token` makes one) or bind to 127.0.0.1")
