"""`sovhub run` component for the MCP bridge: serve streamable HTTP while the hub runs.

The manifest only: fastmcp and the bridge are imported by `setup`, when `mcp.enabled` is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.component import GPU, MCP, SCHEDULES

if TYPE_CHECKING:
    from hub.config import HubConfig
    from hub.core import Hub

TITLE = "the MCP server"
PROVIDES = (MCP,)
NEEDS = (GPU, SCHEDULES)  # its tools read the GPU scheduler and the timetables
REQUIRES = {"fastmcp": "fastmcp>=4.0,<5", "uvicorn": "uvicorn"}


def enabled(config: HubConfig) -> bool:
    return config.mcp.enabled


async def setup(hub: Hub) -> None:
    from bridges.mcp.bridge import MCPBridge

    bridge = MCPBridge(hub)
    await bridge.start()
    hub.extras[MCP] = bridge


async def teardown(hub: Hub) -> None:
    bridge = hub.extras.pop(MCP, None)
    if bridge is not None:
        await bridge.stop()
