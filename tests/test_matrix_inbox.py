"""The exactly-once inbox and the room settings cache on a real SQLite store."""

from __future__ import annotations

from bridges.matrix.inbox import Inbox, InboxEvent
from hub.commands import RoomSettings
from hub.store import Store


def _ev(i: int, room: str = "!r:x") -> InboxEvent:
    return InboxEvent(f"$e{i}", room, "@a:x", i, {"content": {"body": f"m{i}"}})


async def test_a_batch_of_events_is_recorded_once_and_only_new_ones_come_back(tmp_path):
    store = await Store.open(tmp_path / "hub.db")
    try:
        inbox = Inbox(store)
        first = await inbox.add([_ev(i) for i in range(250)] + [_ev(3)])  # more than one statement's worth
        assert [e.event_id for e in first] == [f"$e{i}" for i in range(250)]
        again = await inbox.add([_ev(249), _ev(250), _ev(0), _ev(251)])  # a replayed sync plus two new
        assert [e.event_id for e in again] == ["$e250", "$e251"]
        assert await inbox.counts() == {"pending": 252}
        await inbox.finish("$e0")
        assert [e.event_id for e in await inbox.pending()][:2] == ["$e1", "$e2"]
        assert await inbox.add([]) == []
    finally:
        await store.close()


async def test_room_settings_read_from_the_cache_still_see_every_change(tmp_path):
    store = await Store.open(tmp_path / "hub.db")
    try:
        a, b = RoomSettings(store, "matrix"), RoomSettings(store, "matrix")
        assert await b.get("!r:x", "thread_mode") == "auto"  # default, now cached
        await a.set("!r:x", "thread_mode", "always")
        assert await b.get("!r:x", "thread_mode") == "always"
        assert await RoomSettings(store, "demo").get("!r:x", "thread_mode") == "auto"  # bridges apart
        assert await b.rooms_with("thread_mode", "always") == ["!r:x"]
    finally:
        await store.close()
    reopened = await Store.open(tmp_path / "hub.db")
    try:
        assert await RoomSettings(reopened, "matrix").get("!r:x", "thread_mode") == "always"
    finally:
        await reopened.close()
