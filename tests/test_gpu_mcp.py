"""The GPU controls as MCP tools over real streamable HTTP (fastmcp's Client), against stand-in
residents under the process driver: read tokens see, only the owner role changes."""

from __future__ import annotations

import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError

from tests import status_helpers
from tests.test_mcp_http import OWNER, READER, WRITER, running
from tests.waiting import wait_until


async def _phase(hub, name: str, want: str, timeout: float = 60.0) -> None:
    await wait_until(lambda: hub.gpu.snapshot().residents[name]["phase"] == want, timeout=timeout,
                     what=f"{name} to become {want}")


@pytest.mark.slow  # starts processes: outside the fast tier
async def test_gpu_tools_show_to_readers_and_change_only_for_owners(tmp_path):
    config = {"residents": status_helpers.sim_residents()}
    async with running(tmp_path, components=("hub.gpu.component",), config=config) as (hub, bridge):
        scheduler = hub.gpu
        try:
            await _phase(hub, "sglang", "ready")
            async with Client(bridge.url, auth=READER) as reader:
                status = (await reader.call_tool("gpu_status", {})).structured_content
                assert status["residents"]["sglang"]["phase"] == "ready" and "sglang (default): ready" in status["text"]
                with pytest.raises(ToolError, match="needs an owner token"):
                    await reader.call_tool("gpu_control", {"action": "load", "resident": "comfyui"})
            async with Client(bridge.url, auth=WRITER) as writer:
                with pytest.raises(ToolError, match="needs an owner token"):
                    await writer.call_tool("gpu_control", {"action": "unload"})
            async with Client(bridge.url, auth=OWNER) as owner:
                with pytest.raises(ToolError, match="refused: sglang is already loaded"):
                    await owner.call_tool("gpu_control", {"action": "load", "resident": "sglang"})
                r = await owner.call_tool("gpu_control", {"action": "pin", "resident": "comfyui", "pin_for": "30m"})
                assert "comfyui pinned by mcp:ana" in r.structured_content["message"]
                await _phase(hub, "comfyui", "ready")
                with pytest.raises(ToolError, match="pinned by mcp:ana"):
                    await owner.call_tool("gpu_control", {"action": "unload", "resident": "comfyui"})
                logs = await owner.call_tool("gpu_logs", {"resident": "comfyui", "lines": 20})
                assert logs.content and logs.content[0].text.strip()
        finally:
            await status_helpers._stop_process_residents(scheduler)
