"""The operator's GPU controls as MCP tools: `gpu_status` (anyone with a token that reads),
`gpu_control` (load, unload, pin, unpin: owner role only, the bridge's role checks) and `gpu_logs`.

Each change is a request to the scheduler through `hub.gpu.surfaces`, the same path as the CLI,
`/gpu` in chat and the status page; a refusal comes back as a tool error with the scheduler's reason.
"""

# No `from __future__ import annotations`: pydantic must see the real types of the tool signatures.
import dataclasses
import logging
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from pydantic import BaseModel, Field

from bridges.mcp.access import Caller, annotations_for, current_caller
from hub.context import Context
from hub.errors import HubError
from hub.gpu import surfaces as gpu_surfaces
from hub.registry import Permission

if TYPE_CHECKING:
    from hub.core import Hub

GPU_TOOL_NAMES = ("gpu_status", "gpu_control", "gpu_logs")
Resident = Annotated[str, Field(description="a configured resident model server", min_length=1, max_length=64)]


class ControlOut(BaseModel):
    ok: bool
    message: str = Field(description="the scheduler's answer")


def add_gpu_tools(mcp: FastMCP, hub: "Hub", *, default_caller: Caller | None) -> None:
    def caller() -> Caller:
        return current_caller(default_caller)

    @mcp.tool(annotations=annotations_for(Permission.read))
    async def gpu_status() -> dict[str, Any]:
        """What is resident, pins (who, until when), TTLs, queue limits, and the GPU queue with ETAs."""
        snap = dataclasses.asdict(hub.gpu.snapshot())
        return {"text": gpu_surfaces.describe(snap), **snap}

    @mcp.tool(annotations=annotations_for(Permission.destructive))
    async def gpu_control(
        action: Literal["load", "unload", "pin", "unpin"],
        resident: Annotated[str | None, Field(description="omit with unload: every loaded resident",
                                              max_length=64)] = None,
        pin_for: Annotated[str | None, Field(description="with pin: how long, e.g. 30m or 2h",
                                             max_length=16)] = None,
    ) -> ControlOut:
        """Ask the GPU scheduler to load, unload, pin or unpin a resident (owner role). It refuses
        with the reason when the request would break its rules (e.g. a job is running on it)."""
        who = caller()
        if not who.is_owner:
            raise ToolError(who.lacks("owner", f"gpu_control {action}"), log_level=logging.INFO)
        try:
            seconds = gpu_surfaces.parse_for(pin_for or "") if action == "pin" else None
        except HubError as exc:
            raise ToolError(str(exc), log_level=logging.INFO) from None
        answer = await gpu_surfaces.control(hub, action, resident, by=f"mcp:{who.name}", seconds=seconds,
                                            context=Context.new("mcp", user=who.name))
        if not answer.ok:
            raise ToolError(f"refused: {answer.message}", log_level=logging.INFO)
        return ControlOut(ok=True, message=answer.message)

    @mcp.tool(annotations=annotations_for(Permission.read))
    async def gpu_logs(resident: Resident,
                       lines: Annotated[int, Field(ge=1, le=500, description="how many lines")] = 50) -> str:
        """The last lines of a resident model server's output (its container log or log file)."""
        try:
            return await gpu_surfaces.logs(hub, resident, lines)
        except HubError as exc:
            raise ToolError(str(exc), log_level=logging.INFO) from None
