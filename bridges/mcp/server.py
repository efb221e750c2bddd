"""Build the FastMCP server from the hub: every registry skill plus the bridge's own tools."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastmcp import FastMCP

import hub as hub_package
from bridges.mcp.access import Caller, RoleTokenVerifier
from bridges.mcp.errors import ClearArgumentErrors
from bridges.mcp.gpu_tools import add_gpu_tools
from bridges.mcp.hub_tools import HUB_TOOL_NAMES, add_hub_tools
from bridges.mcp.resources import add_artifact_resources
from bridges.mcp.schemas import json_safety_problems
from bridges.mcp.skill_tools import CallStats, SkillTool
from bridges.mcp.starting import StartingHub, WaitForHub

if TYPE_CHECKING:
    from hub.core import Hub

INSTRUCTIONS = (
    "sovhub: the tools of a self-hosted AI box. Each tool is one of the hub's skills; a long one may "
    "answer with a job id (pending=true): fetch its result later with job_result. ask / ask_local put a "
    "question to the hub's assistant."
)
log = logging.getLogger(__name__)


def build_server(hub: Hub | StartingHub, *, default_caller: Caller | None, with_auth: bool,
                 stats: CallStats | None = None) -> FastMCP:
    """A FastMCP server whose tools come from `hub.skills` (never a hand-kept list).

    `with_auth` puts the configured bearer tokens in front (HTTP); `default_caller` is who a call
    without a token is (stdio's spawner, or a token-less loopback HTTP client). With a `StartingHub`
    the tools are listed at once and calls wait until the hub is up.
    """
    config = hub.config.mcp
    clash = sorted(s.name for s in hub.skills if s.name in HUB_TOOL_NAMES)
    if clash:
        raise ValueError(f"skills {', '.join(clash)} clash with the MCP bridge's own tools; rename them")
    auth = RoleTokenVerifier(config.tokens) if with_auth and config.tokens else None
    middleware = [WaitForHub(hub)] if isinstance(hub, StartingHub) else []
    mcp = FastMCP("sovhub", instructions=INSTRUCTIONS, auth=auth, mask_error_details=True,
                  version=hub_package.version(), middleware=[*middleware, ClearArgumentErrors()])
    stats = stats or CallStats()
    for skill in hub.skills:
        tool = SkillTool.build(hub, skill, default_caller=default_caller, wait_s=config.call_wait_s, stats=stats)
        problems = json_safety_problems(tool.parameters, "inputSchema") + json_safety_problems(
            tool.output_schema, "outputSchema")
        if problems:
            # One unsafe number makes strict clients reject the whole tool list: leave this tool out.
            log.error("MCP tool %s left out: %s", skill.name, "; ".join(problems))
            continue
        mcp.add_tool(tool)
    add_hub_tools(mcp, hub, default_caller=default_caller, max_wait_s=config.call_wait_s)
    add_gpu_tools(mcp, hub, default_caller=default_caller)
    add_artifact_resources(mcp, hub, default_caller=default_caller)
    return mcp
