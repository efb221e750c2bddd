"""`status:` the read-only status page and Prometheus metrics."""

from __future__ import annotations

from pydantic import Field, SecretStr

from hub.config.base import Section


class StatusConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8003, ge=0, le=65535)
    token: SecretStr | None = None
