"""Who may talk to the bot: glob patterns (`@*:example.org`, `@alice:*`), global and per room.

Roles: `owner` (may approve and run destructive skills, change room settings) and `user`.
Anyone else gets no answer and no join.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from hub.config.matrix import MatrixConfig


def matches(patterns: list[str], user_id: str) -> bool:
    """A pattern is a full Matrix ID glob; a bare server (`example.org`) means `@*:example.org`."""
    for pattern in patterns:
        if not pattern.startswith("@") and ":" not in pattern and pattern != "*":
            pattern = f"@*:{pattern}"
        if fnmatchcase(user_id, pattern):
            return True
    return False


class Access:
    def __init__(self, config: MatrixConfig) -> None:
        self.config = config

    def role(self, user_id: str, room_id: str | None = None) -> str | None:
        """`owner`, `user`, or None (ignore). Per-room rules add to the global ones."""
        cfg = self.config
        room = cfg.rooms.get(room_id) if room_id else None
        if matches(cfg.owners, user_id) or (room is not None and matches(room.owners, user_id)):
            return "owner"
        if matches(cfg.allowed_users, user_id) or (room is not None and matches(room.users, user_id)):
            return "user"
        return None

    def may_invite(self, user_id: str, room_id: str) -> bool:
        return self.role(user_id, room_id) is not None
