"""`api:` the OpenAI- and Anthropic-compatible gateway (bridges/api) every tool on the box talks to."""

from __future__ import annotations

from pydantic import Field, model_validator

from hub.config.base import Section
from hub.config.mcp import MCPToken, is_loopback


class APIConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8004, ge=0, le=65535, description="0 = any free port (tests)")
    tokens: list[MCPToken] = Field(
        default_factory=list, description="bearer tokens, as mcp.tokens: read lists models, write/owner may ask; "
                                          "policy local-only keeps every request of the token off the cloud")
    anonymous_role: str = Field("write", pattern="^(read|write)$",
                                description="role of callers without a token when no tokens are configured (loopback)")
    cloud_aliases: list[str] = Field(
        default_factory=lambda: ["claude"], description="model names answered by the cloud provider (translated); "
                                                        "names starting with claude- are passed to it as they are")
    max_waiting: int = Field(8, ge=0, description="requests waiting for the local model at once; more get 429")
    keepalive_s: float = Field(5.0, gt=0, description="a streamed request waiting for a swap gets an SSE comment "
                                                      "this often")
    est_seconds: float = Field(30.0, gt=0, description="what one request tells the GPU scheduler it will take")

    @model_validator(mode="after")
    def _safe(self) -> APIConfig:
        names = [t.name for t in self.tokens]
        if len(set(names)) != len(names):
            raise ValueError("token names must be unique")
        if self.enabled and not self.tokens and not is_loopback(self.host):
            raise ValueError(f"api.host is {self.host}, which other machines can reach, but api.tokens is empty: "
                             "add a token (`sovhub mcp token` makes one) or bind to 127.0.0.1")
        return self
