"""The bridge's own tools beside the skills: jobs (status, result, cancel, list), hub status, chat.

Jobs are private to their caller unless the caller holds an owner token: a read token cannot
browse other people's prompts.
"""

# No `from __future__ import annotations`: the tool signatures below close over runtime values
# (e.g. the wait limit) that pydantic must see when it builds their schemas.
import contextlib
import logging
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.server.dependencies import get_context
from fastmcp.tools.base import ToolResult
from pydantic import BaseModel, Field

from bridges.mcp.access import Caller, annotations_for, current_caller
from bridges.mcp.gpu_tools import GPU_TOOL_NAMES
from bridges.mcp.skill_tools import ProgressOut, result_content
from hub.context import Context
from hub.errors import HubError, UnknownJob
from hub.jobs import FINAL, JobRecord
from hub.registry import Permission

if TYPE_CHECKING:
    from hub.core import Hub

HUB_TOOL_NAMES = ("job_status", "job_result", "cancel_job", "list_jobs", "hub_status", "ask", "ask_local",
                  *GPU_TOOL_NAMES)
NOT_CONFIGURED = "chat is not configured on this hub (no local or cloud model): ask and ask_local are unavailable"

JobId = Annotated[str, Field(description="the job id a tool call returned", min_length=1, max_length=64)]
JobState = Literal["queued", "running", "waiting_approval", "succeeded", "failed", "cancelled", "rejected",
                   "refused", "denied"]


def refusal(message: str) -> ToolError:
    """A tool error caused by the call, not by the hub: logged at INFO, not as a server error."""
    return ToolError(message, log_level=logging.INFO)


class JobInfo(BaseModel):
    job_id: str
    skill: str
    status: str
    origin: str
    user: str | None = None
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = None
    error: str | None = None
    progress: ProgressOut | None = None


class JobResultOut(BaseModel):
    job_id: str
    skill: str
    status: str
    done: bool
    result: dict[str, Any] | None = Field(None, description="the skill's result once the job succeeded")
    progress: ProgressOut | None = None


class JobList(BaseModel):
    jobs: list[JobInfo]


class CancelOut(BaseModel):
    job_id: str
    status: str


class AskOut(BaseModel):
    text: str
    route: str = Field(description="where the answer came from: local or cloud")
    reason: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class _CollectSink:
    """A ReplySink that keeps the final text and forwards notices (queued, failover) as progress."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.final: str | None = None
        self.error: str | None = None
        self.notices = 0

    async def start(self) -> None:
        return None

    async def delta(self, text: str) -> None:
        self.parts.append(text)

    async def notice(self, text: str) -> None:
        self.notices += 1
        with contextlib.suppress(Exception):
            await get_context().report_progress(self.notices, None, text)

    async def finish(self, text: str) -> None:
        self.final = text

    async def fail(self, message: str) -> None:
        self.error = message

    @property
    def text(self) -> str:
        return self.final if self.final is not None else "".join(self.parts)


def add_hub_tools(mcp: FastMCP, hub: "Hub", *, default_caller: Caller | None, max_wait_s: float) -> None:
    """Register the job, status and chat tools on `mcp`."""

    def caller() -> Caller:
        return current_caller(default_caller)

    async def visible(job_id: str, who: Caller) -> JobRecord:
        try:
            record = await hub.jobs.get(job_id)
        except UnknownJob:
            raise refusal(f"no job {job_id!r}") from None
        except HubError as exc:  # e.g. storage full: the job exists but its row cannot be written yet
            raise refusal(f"job {job_id!r}: {exc}") from None
        if not who.is_owner and not (record.context.origin == "mcp" and record.context.user == who.name):
            raise refusal(f"no job {job_id!r} among yours (only the owner role sees other callers' jobs)")
        return record

    def info(record: JobRecord) -> JobInfo:
        handle = hub.jobs.active.get(record.id)
        progress = handle.progress if handle is not None else None
        return JobInfo(job_id=record.id, skill=record.skill, status=handle.status if handle else record.status,
                       origin=record.context.origin, user=record.context.user, created_at=record.created_at,
                       started_at=record.started_at, finished_at=record.finished_at,
                       duration_s=record.duration_s, error=record.error,
                       progress=ProgressOut(**progress.__dict__) if progress else None)

    read = annotations_for(Permission.read)

    @mcp.tool(annotations=read)
    async def job_status(job_id: JobId) -> JobInfo:
        """Status of a job started by a tool call: queued, running (with progress), succeeded, failed..."""
        return info(await visible(job_id, caller()))

    @mcp.tool(annotations=read)
    async def job_result(
        job_id: JobId,
        wait_s: Annotated[float, Field(ge=0, le=max_wait_s, description="wait this long for a running job")] = 0,
    ) -> JobResultOut:
        """The result of a job: waits up to wait_s for it; a failed job gives its error."""
        record = await visible(job_id, caller())
        handle = hub.jobs.active.get(job_id)
        if handle is not None and wait_s > 0:
            with contextlib.suppress(TimeoutError, HubError):
                await handle.wait(wait_s)
            record = await hub.jobs.get(job_id)
        if record.status == "succeeded":
            out = JobResultOut(job_id=job_id, skill=record.skill, status=record.status, done=True,
                               result=record.result)
            structured = out.model_dump(mode="json")
            content = await result_content(hub, structured, job_id)  # the artifacts, as the skill's own call gives them
            return ToolResult(content=content, structured_content=structured) if content else out
        if record.status in FINAL:
            raise refusal(f"job {job_id} ({record.skill}) {record.status}: {record.error or 'no result'}")
        handle = hub.jobs.active.get(job_id)
        progress = handle.progress if handle is not None else None
        return JobResultOut(job_id=job_id, skill=record.skill, status=handle.status if handle else record.status,
                            done=False, progress=ProgressOut(**progress.__dict__) if progress else None)

    @mcp.tool(annotations=annotations_for(Permission.write).model_copy(update={"idempotent_hint": True}))
    async def cancel_job(job_id: JobId) -> CancelOut:
        """Cancel a queued or running job (your own; an owner token may cancel any)."""
        who = caller()
        if who.grant < Permission.write:
            raise refusal(who.lacks("write", "cancel_job"))
        await visible(job_id, who)
        status = await hub.jobs.cancel(job_id)
        return CancelOut(job_id=job_id, status=status)

    @mcp.tool(annotations=read)
    async def list_jobs(
        limit: Annotated[int, Field(ge=1, le=200, description="how many, newest first")] = 20,
        status: Annotated[JobState | None, Field(description="only jobs in this state")] = None,
    ) -> JobList:
        """Recent jobs, newest first: your own, or everyone's with an owner token."""
        who = caller()
        if who.is_owner:
            records = await hub.jobs.list(limit, status)
        else:
            sql = "SELECT id FROM jobs WHERE origin = 'mcp' AND user = ?"
            args: list[Any] = [who.name]
            if status:
                sql += " AND status = ?"
                args.append(status)
            await hub.jobs.flush()
            rows = await hub.store.db.execute_fetchall(sql + " ORDER BY created_at DESC LIMIT ?", (*args, limit))
            records = [await hub.jobs.get(r[0]) for r in rows]
        return JobList(jobs=[info(r) for r in records])

    @mcp.tool(annotations=read)
    async def hub_status() -> dict[str, Any]:
        """The hub at a glance: resident model, GPU queue, running jobs, job counts, spend."""
        return await hub.status()

    async def ask_chat(prompt: str, *, override: str | None, policy: str) -> AskOut:
        who = caller()
        if who.grant < Permission.write:
            raise refusal(who.lacks("write", "asking the model"))
        if hub.chat is None:
            raise refusal(NOT_CONFIGURED)
        from hub.chat.api import ConversationKey, TurnRequest

        ctx = Context.new("mcp", user=who.name)
        request = TurnRequest(text=prompt, context=ctx, conversation=ConversationKey("mcp", who.name, ctx.id),
                              room_policy=policy, override=override, grant=min(who.grant, Permission.write),
                              approver=None, caller_policy=who.policy)
        sink = _CollectSink()
        try:
            outcome = await hub.chat.turn(request, sink)
        except HubError as exc:
            raise refusal(str(exc)) from None
        error = outcome.error or sink.error
        if error:
            raise refusal(error)
        return AskOut(text=outcome.text or sink.text, route=outcome.route, reason=outcome.reason,
                      input_tokens=outcome.input_tokens, output_tokens=outcome.output_tokens,
                      cost_usd=outcome.cost_usd)

    chat_hints = annotations_for(Permission.write)

    @mcp.tool(annotations=chat_hints.model_copy(update={"open_world_hint": True}))
    async def ask(
        prompt: Annotated[str, Field(min_length=1, max_length=100_000, description="the question or task")],
        route: Annotated[Literal["auto", "local", "cloud"],
                         Field(description="auto lets the router choose; local-only policies (the hub's, this token's) "
                                           "refuse cloud, and spend caps apply")] = "auto",
    ) -> AskOut:
        """Ask the hub's assistant (local Mistral or cloud Claude, chosen by the router); returns its answer."""
        return await ask_chat(prompt, override=None if route == "auto" else route, policy="auto")

    @mcp.tool(annotations=chat_hints)
    async def ask_local(
        prompt: Annotated[str, Field(min_length=1, max_length=100_000, description="the question or task")],
    ) -> AskOut:
        """Ask the local model only: the prompt never leaves this machine."""
        return await ask_chat(prompt, override="local", policy="local-only")

