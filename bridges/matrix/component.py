"""`sovhub run` component for the Matrix bridge, started when `matrix.enabled` is set.

The manifest only: matrix-nio (seconds to import on a busy box) is imported by `setup`.
"""

from __future__ import annotations

from hub.component import CHAT, MATRIX, SCHEDULES

TITLE = "the Matrix bridge"
PROVIDES = (MATRIX,)
NEEDS = (CHAT, SCHEDULES)  # it hands turns to the chat service and announces the schedules' results
REQUIRES = {"nio": "matrix-nio[e2e]"}


def enabled(config) -> bool:
    return bool(config.matrix.enabled)


async def setup(hub) -> None:
    from bridges.matrix.bridge import MatrixBridge

    bridge = MatrixBridge(hub)
    await bridge.start()

    async def on_announce(event) -> None:
        """Schedule announcements: to the schedule's room, else to rooms that opted in; files as media."""
        text = event.data.get("text")
        if text:
            await bridge.announce(str(text), room=event.data.get("room"), files=event.data.get("files") or [])

    hub.extras["matrix_unlisten"] = hub.bus.listen("announcement", on_announce)


async def teardown(hub) -> None:
    unlisten = hub.extras.pop("matrix_unlisten", None)
    if unlisten:
        unlisten()
    bridge = hub.extras.get(MATRIX)
    if bridge is not None:
        await bridge.stop()
