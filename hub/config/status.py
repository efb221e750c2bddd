"""`status:` the status page, `/api/status` and Prometheus `/metrics` (bridges/status)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from hub.config.base import Section


class StatusConfig(Section):
    enabled: bool = True
    host: str = Field("127.0.0.1", description="keep it on loopback; other Host headers get 421")
    port: int = Field(8003, ge=0, le=65535, description="0 = any free port (tests)")
    token: SecretStr | None = Field(None, description="enables actions (cancel a job); unset or empty = read-only")
