"""Entry point for the hub runtime: start the Matrix bridge when `matrix.enabled` is set."""

from __future__ import annotations

from bridges.matrix.bridge import MatrixBridge


def enabled(config) -> bool:
    return bool(config.matrix.enabled)


async def setup(hub) -> None:
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
    bridge = hub.extras.get("matrix")
    if bridge is not None:
        await bridge.stop()
