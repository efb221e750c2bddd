"""`mcp:` the MCP server (streamable HTTP) and its bearer tokens."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from hub.config.base import Section


class MCPToken(Section):
    name: str
    token: SecretStr
    role: Literal["read", "write", "owner"] = "read"


class MCPConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8002, ge=0, le=65535)
    path: str = "/mcp"
    tokens: list[MCPToken] = Field(default_factory=list)
    call_wait_s: float = Field(30, gt=0)
