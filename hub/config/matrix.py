"""`matrix:` the Matrix bot account and who may talk to it."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from hub.config.base import Section


class RoomRoles(Section):
    """Extra roles for one room, on top of the global `owners` / `allowed_users`."""

    owners: list[str] = Field(default_factory=list)
    users: list[str] = Field(default_factory=list)


class MatrixConfig(Section):
    enabled: bool = False
    homeserver: str = "http://127.0.0.1:8008"
    user_id: str = "@sovhub:localhost"
    password: SecretStr | None = None
    access_token: SecretStr | None = None
    device_id: str | None = None
    device_name: str = "sovhub"
    store_dir: Path | None = Field(None, description="E2EE + sync store; default <data_dir>/matrix")
    encryption: bool = True
    allowed_users: list[str] = Field(default_factory=list, description="patterns like @*:example.org")
    owners: list[str] = Field(default_factory=list)
    rooms: dict[str, RoomRoles] = Field(default_factory=dict, description="per-room roles by room id")
    edit_interval_s: float = Field(0.8, gt=0)
    approval_timeout_s: float = Field(86400, gt=0)
    notify_unknown_senders: bool = False
    announce_room: str | None = None
    max_message_chars: int = Field(12000, ge=500, le=30000, description="longer answers continue in a new message")
    sync_timeout_ms: int = Field(30000, ge=0)
    timeline_limit: int = Field(100, ge=1, le=1000, description="events per room per sync (the catch-up window)")
