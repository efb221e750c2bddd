"""A human on the test homeserver: a real matrix-nio client (E2EE capable) that records what it sees."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    Event,
    LoginResponse,
    MegolmEvent,
    RoomCreateResponse,
    RoomMemberEvent,
    RoomSendResponse,
)


@dataclass
class Seen:
    room_id: str
    event: Event

    @property
    def source(self) -> dict[str, Any]:
        return self.event.source

    @property
    def content(self) -> dict[str, Any]:
        return self.event.source.get("content") or {}

    @property
    def sender(self) -> str:
        return self.event.sender

    @property
    def event_id(self) -> str:
        return self.event.event_id

    @property
    def relates(self) -> dict[str, Any]:
        return self.content.get("m.relates_to") or {}

    @property
    def is_edit(self) -> bool:
        return self.relates.get("rel_type") == "m.replace"

    @property
    def type(self) -> str:
        return self.source.get("type", "")


class MatrixUserClient:
    def __init__(self, homeserver: str, user, store_dir: Path) -> None:
        store_dir.mkdir(parents=True, exist_ok=True)
        self.user = user
        self.client = AsyncClient(homeserver, user.user_id, store_path=str(store_dir),
                                  config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False))
        self.seen: list[Seen] = []
        self._task: asyncio.Task | None = None
        self._changed = asyncio.Event()

    async def start(self) -> MatrixUserClient:
        resp = await self.client.login(self.user.password, device_name="human")
        assert isinstance(resp, LoginResponse), resp
        await self.client.sync(timeout=0, full_state=True)
        self.client.add_event_callback(self._on_event, Event)
        self.client.add_event_callback(self._on_event, MegolmEvent)
        self._task = asyncio.create_task(self.client.sync_forever(timeout=1000, full_state=False))
        return self

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.close()

    async def _on_event(self, room, event) -> None:
        self.seen.append(Seen(room.room_id, event))
        self._changed.set()

    async def wait_for(self, pred: Callable[[Seen], bool], timeout: float = 20.0, after: int = 0) -> Seen:
        deadline = time.monotonic() + timeout
        while True:
            for item in self.seen[after:]:
                if pred(item):
                    return item
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.user.user_id} did not see the expected event; saw "
                                   f"{[(s.type, s.sender, s.content.get('body')) for s in self.seen[after:]][-15:]}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))

    async def settle(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def from_user(self, user_id: str, room_id: str, after: int = 0, *, edits: bool = False,
                  types: tuple[str, ...] = ("m.room.message",)) -> list[Seen]:
        return [s for s in self.seen[after:] if s.sender == user_id and s.room_id == room_id
                and s.type in types and s.is_edit == edits]

    async def create_room(self, invite: list[str], *, encrypted: bool = False, name: str = "test",
                          wait_join: str | None = None) -> str:
        initial_state = []
        if encrypted:
            initial_state.append({"type": "m.room.encryption", "state_key": "",
                                  "content": {"algorithm": "m.megolm.v1.aes-sha2"}})
        resp = await self.client.room_create(name=name, invite=invite, initial_state=initial_state)
        assert isinstance(resp, RoomCreateResponse), resp
        if wait_join:
            await self.wait_for(lambda s: s.room_id == resp.room_id and isinstance(s.event, RoomMemberEvent)
                                and s.event.state_key == wait_join and s.event.membership == "join")
        return resp.room_id

    async def send(self, room_id: str, body: str, *, thread_root: str | None = None,
                   reply_to: str | None = None, mention: str | None = None) -> str:
        content: dict[str, Any] = {"msgtype": "m.text", "body": body}
        if thread_root:
            content["m.relates_to"] = {"rel_type": "m.thread", "event_id": thread_root, "is_falling_back": True,
                                       "m.in_reply_to": {"event_id": reply_to or thread_root}}
        elif reply_to:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        if mention:
            content["m.mentions"] = {"user_ids": [mention]}
        resp = await self.client.room_send(room_id, "m.room.message", content, ignore_unverified_devices=True)
        assert isinstance(resp, RoomSendResponse), resp
        return resp.event_id

    async def react(self, room_id: str, event_id: str, key: str) -> str:
        resp = await self.client.room_send(room_id, "m.reaction", {
            "m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}})
        assert isinstance(resp, RoomSendResponse), resp
        return resp.event_id
