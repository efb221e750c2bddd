"""`sovhub run` entry point for the MCP bridge: serve streamable HTTP while the hub runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridges.mcp.bridge import MCPBridge
from hub.config import HubConfig

if TYPE_CHECKING:
    from hub.core import Hub


def enabled(config: HubConfig) -> bool:
    return config.mcp.enabled


async def setup(hub: Hub) -> None:
    bridge = MCPBridge(hub)
    await bridge.start()
    hub.extras["mcp"] = bridge


async def teardown(hub: Hub) -> None:
    bridge = hub.extras.pop("mcp", None)
    if bridge is not None:
        await bridge.stop()
