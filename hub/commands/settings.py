"""Per-room settings persisted in SQLite: model policy, thread mode, announcement room.

Keyed by (bridge, room) so any chat front end (Matrix, the terminal demo) keeps its own.
"""

from __future__ import annotations

import json
import time
import weakref
from typing import Any

from hub.commands.parser import UsageError

POLICIES = ("auto", "local", "cloud", "local-only")
THREAD_MODES = ("auto", "always", "off")

# key -> (allowed values or None for free text, default, help)
SETTINGS: dict[str, tuple[tuple[str, ...] | None, Any, str]] = {
    "policy": (POLICIES, None, "model routing for this room (default from routing config)"),
    "thread_mode": (THREAD_MODES, "auto",
                    "auto: answer in a thread when asked in one; always: start a thread per question; off"),
    "announce": (("on", "off"), "off", "this room receives schedule announcements"),
    "notify": (("on", "off"), "on", "on: answers are m.text and notify the asker; off: quiet m.notice answers"),
}


# Settings are read on every message and changed rarely (only through `set`): one read-through
# cache per store, shared by every RoomSettings on it, spares each message its database round trips.
_CACHES: weakref.WeakKeyDictionary[Any, dict[tuple[str, str, str], Any]] = weakref.WeakKeyDictionary()
_MISSING = object()


class RoomSettings:
    def __init__(self, store, bridge: str) -> None:
        self.db = store.db
        self.bridge = bridge
        self._cache = _CACHES.setdefault(store, {})

    async def get(self, room: str, key: str, default: Any = None) -> Any:
        value = self._cache.get((self.bridge, room, key), _MISSING)
        if value is _MISSING:
            rows = await self.db.execute_fetchall(
                "SELECT value FROM room_settings WHERE bridge=? AND room=? AND key=?", (self.bridge, room, key))
            value = json.loads(rows[0][0]) if rows else None
            self._cache[(self.bridge, room, key)] = value
        if value is not None:
            return value
        return SETTINGS[key][1] if default is None and key in SETTINGS else default

    async def all(self, room: str) -> dict[str, Any]:
        return {key: await self.get(room, key) for key in SETTINGS}

    async def set(self, room: str, key: str, value: Any) -> None:
        if key not in SETTINGS:
            raise UsageError(f"unknown setting {key!r} (known: {', '.join(SETTINGS)})")
        allowed = SETTINGS[key][0]
        if allowed is not None and value not in allowed:
            raise UsageError(f"{key} must be one of {', '.join(allowed)} (got {value!r})")
        await self.db.execute(
            "INSERT INTO room_settings(bridge, room, key, value, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(bridge, room, key) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at",
            (self.bridge, room, key, json.dumps(value), time.time()))
        self._cache[(self.bridge, room, key)] = value

    async def rooms_with(self, key: str, value: Any) -> list[str]:
        rows = await self.db.execute_fetchall(
            "SELECT room FROM room_settings WHERE bridge=? AND key=? AND value=?",
            (self.bridge, key, json.dumps(value)))
        return [r[0] for r in rows]
