"""`restart_mcp`: restart a configured MCP server, then prove it serves again (initialize + list_tools).

Targets are `skills.ops.mcp_targets` (Docker containers) plus `hub`, the hub's own MCP bridge
(`hub.extras["mcp"].restart()`). One restart at a time per hub (a concurrent call is refused, not
queued: two people restarting the same thing is a mistake to surface), and a cool-down per target
so a flapping server is not restarted in a loop. The hub never restarts itself from inside.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from hub.errors import BackendDown, HubError
from hub.jobs import SkillRun
from hub.registry import Permission, skill
from skills.ops import dockerctl
from skills.ops.config import McpTarget

if TYPE_CHECKING:
    from hub.core import Hub

log = logging.getLogger(__name__)

HUB_PROCESS = "hub-process"
HUB_BRIDGE = "hub"
ANSWER_GRACE_S = 0.3  # the answer to the MCP call that asked for the restart leaves before the server stops
_AFTER_ANSWER: set[asyncio.Task] = set()


class RestartRefused(HubError):
    """A restart that must not happen now (in progress, cooling down, or the hub itself)."""


class RestartParams(BaseModel):
    target: str = Field(description="a name from skills.ops.mcp_targets, or 'hub' for the hub's own MCP server")


class RestartResult(BaseModel):
    target: str
    kind: str
    url: str
    tool_count: int
    tools: list[str]
    seconds_to_healthy: float | None = Field(None, description="None when the restart comes after this answer")
    restart_seconds: float | None = None
    deferred: bool = Field(False, description="the hub's own MCP server restarts right after answering")
    summary: str


@dataclass
class _State:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    running: str | None = None
    last_restart: dict[str, float] = field(default_factory=dict)


_STATES: weakref.WeakKeyDictionary[Hub, _State] = weakref.WeakKeyDictionary()


def _state(hub: Hub) -> _State:
    state = _STATES.get(hub)
    if state is None:
        state = _STATES[hub] = _State()
    return state


def resolve_target(hub: Hub, name: str) -> McpTarget:
    """The configured target, or the built-in `hub` bridge; refuses the hub's own process."""
    ops = hub.config.skills.ops
    if name == HUB_PROCESS:
        raise RestartRefused("refusing to restart the hub itself from inside the hub; restart the sovhub "
                             "service from the host (e.g. systemctl restart sovhub)")
    if name in ops.mcp_targets:
        return ops.mcp_targets[name]
    if name == HUB_BRIDGE:
        return McpTarget(kind="hub")
    known = ", ".join(sorted({*ops.mcp_targets, HUB_BRIDGE}))
    raise HubError(f"unknown MCP target {name!r} (known: {known})")


def _hub_bridge_url(hub: Hub, target: McpTarget) -> str:
    if target.url:
        return target.url
    bridge = hub.extras.get("mcp")
    url = getattr(bridge, "url", None)
    if isinstance(url, str) and url:
        return url
    cfg = hub.config.mcp
    host = "127.0.0.1" if cfg.host in ("0.0.0.0", "::", "") else cfg.host
    return f"http://{host}:{cfg.port}{cfg.path}"


def _token(hub: Hub, target: McpTarget) -> str | None:
    if target.token is not None:
        return target.token.get_secret_value()
    if target.kind == "hub" and hub.config.mcp.tokens:
        return hub.config.mcp.tokens[0].token.get_secret_value()
    return None


async def _refuse_own_container(hub: Hub, target: McpTarget) -> None:
    ops = hub.config.skills.ops
    if ops.hub_container and target.container == ops.hub_container:
        raise RestartRefused(f"refusing to restart {target.container}: the hub runs in that container")
    own = dockerctl.own_container_ids()
    if not own:
        return
    cid = await asyncio.to_thread(dockerctl.container_id, ops.docker_url, target.container or "")
    if cid in own:
        raise RestartRefused(f"refusing to restart {target.container}: the hub runs in that container")


async def list_tools(url: str, token: str | None, timeout: float) -> list[str]:
    """One MCP session: initialize, then tools/list; the tool names."""
    from fastmcp import Client  # the MCP client stack is loaded only when a restart happens
    async with Client(url, auth=token, timeout=timeout, init_timeout=timeout) as client:
        return [t.name for t in await client.list_tools()]


async def wait_healthy(url: str, token: str | None, timeout: float) -> tuple[list[str], float]:
    """Retry a real MCP handshake until it lists tools or `timeout` passes; (tools, seconds)."""
    started = time.monotonic()
    deadline = started + timeout
    last = "no attempt"
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BackendDown(f"MCP server at {url} did not list its tools within {timeout:g} s after the restart "
                              f"(last error: {last})")
        try:
            tools = await asyncio.wait_for(list_tools(url, token, min(5.0, left)), left)
            return tools, time.monotonic() - started
        except Exception as exc:
            last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


async def _restart_after_answer(hub: Hub, run: SkillRun, target: McpTarget, url: str) -> RestartResult:
    """Called through the hub's own MCP server: restarting now would cut this very call off.

    The tools are listed now (a real handshake), the answer goes out, and the restart and its
    health check follow in the background; the outcome is logged and announced on the bus.
    """
    tools, _ = await wait_healthy(url, _token(hub, target), target.verify_timeout_s)
    context = run.context

    async def later() -> None:
        await asyncio.sleep(ANSWER_GRACE_S)
        started = time.monotonic()
        try:
            await _restart(hub, target)
            after, _ = await wait_healthy(_hub_bridge_url(hub, target), _token(hub, target), target.verify_timeout_s)
            outcome = {"target": HUB_BRIDGE, "healthy": True, "tools": len(after),
                       "seconds": round(time.monotonic() - started, 3)}
            log.info("the hub's MCP server restarted after answering; %d tools in %.1f s",
                     len(after), outcome["seconds"])
        except Exception as exc:
            outcome = {"target": HUB_BRIDGE, "healthy": False, "error": str(exc) or type(exc).__name__}
            log.warning("restarting the hub's MCP server after the answer failed: %s", outcome["error"])
        await hub.bus.fire("mcp_restarted", outcome, context)

    task = asyncio.get_running_loop().create_task(later(), name="restart-mcp-after-answer")
    _AFTER_ANSWER.add(task)
    task.add_done_callback(_AFTER_ANSWER.discard)
    summary = (f"the hub's MCP server restarts right after this answer (this MCP session ends: reconnect); "
               f"it serves {len(tools)} tools")
    return RestartResult(target=HUB_BRIDGE, kind="hub", url=url, tool_count=len(tools), tools=sorted(tools),
                         deferred=True, summary=summary)


async def _restart(hub: Hub, target: McpTarget) -> None:
    if target.kind == "hub":
        bridge = hub.extras.get("mcp")
        if bridge is None or not callable(getattr(bridge, "restart", None)):
            raise BackendDown("the hub's MCP bridge is not running in this hub (mcp.enabled?)")
        result = bridge.restart()
        if inspect.isawaitable(result):
            await result
        return
    ops = hub.config.skills.ops
    await asyncio.to_thread(dockerctl.restart, ops.docker_url, target.container or "", target.stop_timeout_s)


@skill(name="restart_mcp", command="restart-mcp", permission=Permission.destructive, timeout_s=180, est_seconds=10,
       open_world=True,  # drives Docker and configured MCP servers, which may live elsewhere
       description="Restart an MCP server (a configured Docker container, or 'hub' for the hub's own MCP "
                   "server) and verify it lists its tools again. Needs approval.",
       params=RestartParams, result=RestartResult, long_running=True)
async def restart_mcp(run: SkillRun, params: RestartParams) -> RestartResult:
    hub = run.hub
    target = resolve_target(hub, params.target)
    state = _state(hub)
    if state.lock.locked():
        raise RestartRefused(f"a restart of {state.running} is in progress; try again when it has finished")
    cooldown = hub.config.skills.ops.restart_cooldown_s
    async with state.lock:
        state.running = params.target
        try:
            since = time.monotonic() - state.last_restart.get(params.target, float("-inf"))
            if since < cooldown:
                raise RestartRefused(f"{params.target} was restarted {since:.0f} s ago; the cool-down is "
                                     f"{cooldown:g} s (try again in {cooldown - since:.0f} s)")
            if target.kind == "docker":
                await _refuse_own_container(hub, target)
            url = _hub_bridge_url(hub, target) if target.kind == "hub" else str(target.url)
            if target.kind == "hub" and run.context.origin == "mcp" and "mcp" in hub.extras:
                state.last_restart[params.target] = time.monotonic()
                return await _restart_after_answer(hub, run, target, url)
            await run.progress(1, 3, f"restarting {params.target}")
            started = time.monotonic()
            state.last_restart[params.target] = started
            await _restart(hub, target)
            restart_s = time.monotonic() - started
            await run.log("restarted", target=params.target, seconds=round(restart_s, 3))
            await run.progress(2, 3, "waiting for initialize + list_tools")
            if target.kind == "hub":
                url = _hub_bridge_url(hub, target)  # a port-0 bridge keeps its port, but ask again
            tools, _ = await wait_healthy(url, _token(hub, target), target.verify_timeout_s)
            healthy_s = time.monotonic() - started
            await run.progress(3, 3, f"{len(tools)} tools")
        finally:
            state.running = None
    summary = (f"{params.target} restarted and healthy in {healthy_s:.1f} s: {len(tools)} tools "
               f"({', '.join(sorted(tools)[:12])}{', ...' if len(tools) > 12 else ''})")
    return RestartResult(target=params.target, kind=target.kind, url=url, tool_count=len(tools), tools=sorted(tools),
                         seconds_to_healthy=round(healthy_s, 3), restart_seconds=round(restart_s, 3),
                         summary=summary)

