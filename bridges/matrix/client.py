"""The bot's Matrix connection: matrix-nio with E2EE, a kept device and access token, a sync step.

Password login happens once; the access token and device id are then kept in the store dir (file
mode 0600) and reused, so the device (and its E2EE keys) survives restarts and reply transaction
ids stay in one scope. The token is never logged. `M_LIMIT_EXCEEDED` is retried by nio after the
server's `retry_after_ms` (`max_limit_exceeded=None` = keep honouring it).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    LoginResponse,
    RoomSendResponse,
    SyncResponse,
    UploadResponse,
)

from hub.config.matrix import MatrixConfig
from hub.errors import HubError

log = logging.getLogger(__name__)

CREDENTIALS = "credentials.json"


class MatrixError(HubError):
    pass


class TokenRevoked(MatrixError):
    """The homeserver no longer accepts the kept access token (logged out elsewhere, expired)."""


def sync_filter(timeline_limit: int) -> dict[str, Any]:
    """Only what the bot needs: room timelines (no presence, no account data noise)."""
    return {
        "presence": {"types": []},
        "account_data": {"types": []},
        "room": {
            "timeline": {"limit": timeline_limit},
            "state": {"lazy_load_members": False},
            "ephemeral": {"types": []},
            "account_data": {"types": []},
        },
    }


class MatrixConnection:
    def __init__(self, config: MatrixConfig, store_dir: Path) -> None:
        self.config = config
        self.store_dir = store_dir
        store_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(store_dir, 0o700)
        self.client = self._new_client()

    def _new_client(self) -> AsyncClient:
        cfg = self.config
        return AsyncClient(
            cfg.homeserver, cfg.user_id, device_id=cfg.device_id or "", store_path=str(self.store_dir),
            config=AsyncClientConfig(encryption_enabled=cfg.encryption, store_sync_tokens=False,
                                     max_limit_exceeded=None, max_timeouts=None, request_timeout=60),
        )

    @property
    def user_id(self) -> str:
        return self.client.user_id

    async def login(self) -> None:
        """Reuse kept credentials; else the configured token; else a password login (kept afterwards)."""
        cfg = self.config
        creds_path = self.store_dir / CREDENTIALS
        if creds_path.exists():
            creds = json.loads(creds_path.read_text())
            if creds.get("homeserver") == cfg.homeserver and creds.get("user_id") == cfg.user_id:
                self.client.restore_login(creds["user_id"], creds["device_id"], creds["access_token"])
                log.info("matrix: restored device %s for %s", creds["device_id"], creds["user_id"])
                return
        if cfg.access_token is not None and cfg.device_id:
            self.client.restore_login(cfg.user_id, cfg.device_id, cfg.access_token.get_secret_value())
            return
        if cfg.password is None:
            raise MatrixError("matrix: set matrix.password (or password_file) or an access_token with a device_id")
        resp = await self.client.login(cfg.password.get_secret_value(), device_name=cfg.device_name)
        if not isinstance(resp, LoginResponse):
            raise MatrixError(f"matrix login as {cfg.user_id} failed: {getattr(resp, 'message', resp)}")
        fd = os.open(creds_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"homeserver": cfg.homeserver, "user_id": resp.user_id, "device_id": resp.device_id,
                       "access_token": resp.access_token}, fh)
        log.info("matrix: logged in as %s, new device %s", resp.user_id, resp.device_id)

    def _quiet_store(self) -> None:
        """nio writes the set of newly encrypted rooms to its SQLite store after EVERY sync, even when
        the set is empty: a blocking transaction in the event loop that every room's reply waits
        behind. Only a non-empty set is worth writing."""
        store = self.client.store
        if store is None or getattr(store, "_sovhub_quiet", False):
            return
        save = store.save_encrypted_rooms

        def save_encrypted_rooms(rooms) -> None:
            if rooms:
                save(rooms)

        store.save_encrypted_rooms = save_encrypted_rooms
        store._sovhub_quiet = True

    async def sync(self, since: str | None, timeout_ms: int, full_state: bool = False) -> SyncResponse:
        self._quiet_store()
        resp = await self.client.sync(timeout=timeout_ms, since=since, full_state=full_state,
                                      sync_filter=sync_filter(self.config.timeline_limit))
        if not isinstance(resp, SyncResponse):
            if getattr(resp, "status_code", None) == "M_UNKNOWN_TOKEN":
                raise TokenRevoked(f"matrix: the access token of {self.config.user_id} was revoked")
            raise MatrixError(f"matrix sync failed: {getattr(resp, 'message', resp)}")
        return resp

    async def relogin(self) -> None:
        """Forget the revoked token and log in again with the password (a new device)."""
        (self.store_dir / CREDENTIALS).unlink(missing_ok=True)
        if self.config.password is None:
            raise MatrixError("matrix: the access token was revoked and no password is configured to log in again")
        await self.client.close()
        self.client = self._new_client()  # a fresh client: new device, new E2EE store
        await self.login()

    async def housekeeping(self) -> None:
        """The E2EE chores sync_forever would do: to-device messages, key upload/query/claim."""
        c = self.client
        if c.olm is None:
            return
        await c.send_to_device_messages()
        if c.should_upload_keys:
            await c.keys_upload()
        if c.should_query_keys:
            await c.keys_query()
        if c.should_claim_keys:
            users = c.get_users_for_key_claiming()
            if users:
                await c.keys_claim(users)

    async def send(self, room_id: str, content: dict[str, Any], *, event_type: str = "m.room.message",
                   txn_id: str | None = None) -> str:
        resp = await self.client.room_send(room_id, event_type, content, tx_id=txn_id,
                                           ignore_unverified_devices=True)
        if not isinstance(resp, RoomSendResponse):
            raise MatrixError(f"sending to {room_id} failed: {getattr(resp, 'message', resp)}")
        return resp.event_id

    async def typing(self, room_id: str, on: bool) -> None:
        try:
            await self.client.room_typing(room_id, on, timeout=30000)
        except Exception as exc:  # typing is cosmetic; never fail a turn over it
            log.debug("typing notice failed: %s", exc)

    async def upload(self, data: bytes, content_type: str, filename: str, encrypt: bool) -> tuple[str, Any]:
        import io

        resp, keys = await self.client.upload(lambda *_: io.BytesIO(data), content_type=content_type,
                                              filename=filename, filesize=len(data), encrypt=encrypt)
        if not isinstance(resp, UploadResponse):
            raise MatrixError(f"upload of {filename} failed: {getattr(resp, 'message', resp)}")
        return resp.content_uri, keys

    def is_encrypted(self, room_id: str) -> bool:
        room = self.client.rooms.get(room_id)
        return bool(room and room.encrypted)

    async def close(self) -> None:
        await self.client.close()


def error_text(resp: Any) -> str:
    return resp.message if isinstance(resp, ErrorResponse) else str(resp)
