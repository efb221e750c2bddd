"""One MCP tool per registry skill: schemas from the skill's models, runs through `hub.start_skill`.

A call waits for the job; a skill that may take long (long_running, or needing a GPU resident that
may have to be swapped in) returns its job id after `mcp.call_wait_s`, and its output schema says
so: the result model, or a `JobPending` the caller resolves with `job_result`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from fastmcp.exceptions import ToolError
from fastmcp.server.dependencies import get_context
from fastmcp.tools.base import Tool, ToolResult
from mcp_types import TextContent
from pydantic import BaseModel, Field, PrivateAttr

from bridges.mcp.access import Caller, annotations_for, current_caller
from bridges.mcp.approval import plan_for
from bridges.mcp.content import adopt, artifacts_in, blocks_for, named_paths, published_in, published_roots
from hub.context import Context
from hub.errors import HubError, PermissionDenied
from hub.jobs import JobHandle, Progress
from hub.registry import Skill

if TYPE_CHECKING:
    from hub.core import Hub

log = logging.getLogger(__name__)


class ProgressOut(BaseModel):
    done: float
    total: float | None = None
    message: str = ""


class JobPending(BaseModel):
    """What a tool returns when its job outlives the call: fetch the result later with job_result."""

    pending: Literal[True] = True
    job_id: str = Field(description="pass to job_result / job_status / cancel_job")
    skill: str
    status: str
    progress: ProgressOut | None = None
    message: str


def may_defer(skill: Skill) -> bool:
    """Skills that can outlive one call: declared long, or waiting for a GPU resident (a swap takes minutes)."""
    return skill.long_running or skill.resident is not None


def output_schema_for(skill: Skill) -> dict[str, Any]:
    result = dict(skill.output_schema())
    if not may_defer(skill):
        return result
    pending = dict(JobPending.model_json_schema())
    defs = {**result.pop("$defs", {}), **pending.pop("$defs", {})}
    schema: dict[str, Any] = {"type": "object", "anyOf": [result, pending]}
    if defs:
        schema["$defs"] = defs
    return schema


def pending_result(handle: JobHandle, waited_s: float) -> ToolResult:
    progress = handle.progress
    note = ""
    if progress is not None:
        share = f"{progress.done:g}/{progress.total:g}" if progress.total else f"{progress.done:g}"
        note = f" ({share}{': ' + progress.message if progress.message else ''})"
    message = (f"{handle.skill.name} is still {handle.status}{note} after {waited_s:g} s; it goes on as job "
               f"{handle.id}. Call job_result with job_id=\"{handle.id}\" to get its result.")
    body = JobPending(job_id=handle.id, skill=handle.skill.name, status=handle.status, message=message,
                      progress=ProgressOut(**progress.__dict__) if progress else None)
    return ToolResult(content=[TextContent(type="text", text=message)],
                      structured_content=body.model_dump(mode="json"),
                      meta={"sovhub": {"job_id": handle.id, "pending": True}})


async def result_content(hub: Any, structured: dict[str, Any], job_id: str) -> list[Any] | None:
    """The result as JSON text plus its artifacts as images, audio and resource links (None: none)."""
    paths = named_paths(structured)
    if not paths:
        return None  # FastMCP renders the structured result as text, as for any tool
    root = hub.config.storage.artifacts_dir
    found = artifacts_in(paths, root)
    published = published_in(paths, published_roots(hub.config))
    if not found and not published:
        return None  # FastMCP renders the structured result as text, as for any tool

    def build() -> list[Any]:
        items = [*found, *((job_id, adopt(path, root / job_id)) for path in published)]
        blocks: list[Any] = [TextContent(type="text", text=json.dumps(structured, ensure_ascii=False))]
        for owner_job, path in items:
            blocks.extend(blocks_for(owner_job, path))
        return blocks

    return await asyncio.to_thread(build)


class CallStats:
    """Counters for `status()` and the shutdown flag, shared by a server's tools (one event loop)."""

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.deferred = 0
        self.stopping = False  # set while the server shuts down: cut-off calls leave their jobs running


class SkillTool(Tool):
    """A registry skill as an MCP tool. Built from the Skill, never declared by hand."""

    KEY_PREFIX: ClassVar[str] = "tool"
    _skill: Skill = PrivateAttr()
    _hub: Any = PrivateAttr()
    _default_caller: Caller | None = PrivateAttr(default=None)
    _wait_s: float = PrivateAttr(default=30.0)
    _stats: CallStats = PrivateAttr()

    @classmethod
    def build(cls, hub: Hub, skill: Skill, *, default_caller: Caller | None, wait_s: float,
              stats: CallStats) -> SkillTool:
        tool = cls(
            name=skill.name,
            description=skill.description,
            parameters=skill.input_schema(),
            output_schema=output_schema_for(skill),
            annotations=annotations_for(skill.permission, open_world=skill.open_world),
            meta={"sovhub": {"permission": skill.permission.name, "long_running": may_defer(skill),
                             "resident": skill.resident}},
        )
        tool._skill, tool._hub, tool._default_caller = skill, hub, default_caller
        tool._wait_s, tool._stats = wait_s, stats
        return tool

    async def run(self, arguments: dict[str, Any]) -> ToolResult:
        # pydantic answers each private attribute through `__getattr__`; one dict read instead
        private = self.__pydantic_private__
        skill, hub, stats = private["_skill"], private["_hub"], private["_stats"]
        caller = current_caller(private["_default_caller"])
        ctx = Context.new("mcp", user=caller.name)
        stats.calls += 1
        mcp_ctx = get_context()
        plan = plan_for(hub, skill, caller, mcp_ctx)
        try:
            handle = await hub.start_skill(skill.name, arguments, ctx, grant=plan.grant, approval=plan.approval)
        except PermissionDenied:
            stats.errors += 1
            need = "owner" if skill.permission.name == "destructive" else "write"
            raise ToolError(plan.refusal or caller.lacks(need, f"{skill.name} ({skill.permission.name})"),
                            log_level=logging.INFO) from None
        except HubError as exc:  # InvalidParams (names the field), UnknownSkill, ...: the caller's mistake
            stats.errors += 1
            raise ToolError(str(exc), log_level=logging.INFO) from None
        limit = private["_wait_s"] if may_defer(skill) else None
        try:
            if plan.asked is not None:
                await _approval_answered(handle, plan.asked)  # the wait limit starts once a person said yes
            result = await self._wait(handle, limit, mcp_ctx)
        except asyncio.CancelledError:
            # The client gave up on this call (MCP cancellation, timeout): nobody will collect the job.
            if not handle.done and not stats.stopping:
                await handle.cancel()
            raise
        except HubError as exc:
            stats.errors += 1
            raise ToolError(f"{exc} (job {handle.id})", log_level=logging.WARNING) from None
        if result is None:
            stats.deferred += 1
            return pending_result(handle, limit or 0)
        structured = result.model_dump(mode="json")
        return ToolResult(content=await result_content(hub, structured, handle.id), structured_content=structured,
                          meta={"sovhub": {"job_id": handle.id}})

    async def _wait(self, handle: JobHandle, limit: float | None, mcp_ctx: Any) -> BaseModel | None:
        """The result, or None when `limit` passed first; progress goes to the client meanwhile."""
        sender = _ProgressSender(mcp_ctx)
        unsubscribe = handle.on_progress(sender.push)
        try:
            return await handle.wait(limit)
        except TimeoutError:
            return None
        finally:
            unsubscribe()
            await sender.close()


async def _approval_answered(handle: JobHandle, asked: asyncio.Event) -> None:
    """Until the approver answered (or the job ended first, e.g. cancelled)."""
    answered = asyncio.ensure_future(asked.wait())
    ended = asyncio.ensure_future(handle.wait())
    try:
        await asyncio.wait({answered, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (answered, ended):
            task.cancel()
        with contextlib.suppress(BaseException):
            await ended


class _ProgressSender:
    """Forwards a job's progress as MCP notifications without ever slowing the job down.

    Reports are coalesced (only the latest unsent one is kept) and sent from one task that starts
    on the first report, so a call that reports nothing costs nothing.
    """

    def __init__(self, mcp_ctx: Any) -> None:
        self._ctx = mcp_ctx
        self._latest: Progress | None = None
        self._task: asyncio.Task | None = None

    def push(self, progress: Progress) -> None:
        self._latest = progress
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._latest is not None:
            p, self._latest = self._latest, None
            with contextlib.suppress(Exception):
                await self._ctx.report_progress(p.done, p.total, p.message or None)

    async def close(self) -> None:
        self._latest = None
        if self._task is not None and not self._task.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 1)
