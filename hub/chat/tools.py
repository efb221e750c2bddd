"""The model's tools: the registry's skills the caller may run (by grant) plus two hub tools.

There is no second list: skills come from `hub.skills`, validated and run through `hub.run_skill`
(job row, events, approval). A destructive skill needs an approver; without one it is refused.
Tool errors go back to the model as error results, never as exceptions.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from hub.context import Context
from hub.errors import HubError, UnknownJob
from hub.jobs import FINAL, Approver
from hub.llm.types import Message, ToolCall, ToolSpec
from hub.registry import Permission

MAX_RESULT_CHARS = 8000

HUB_TOOLS = {
    "hub_status": ToolSpec("hub_status", "The hub at a glance: resident model, GPU queue, running jobs, spend.",
                           {"type": "object", "properties": {}}),
    "hub_jobs": ToolSpec("hub_jobs", "Recent jobs (skill runs) with their status.",
                         {"type": "object", "properties": {
                             "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
                             "status": {"type": "string", "description": "only jobs in this status"}}}),
}


class ReplayGuard:
    """One turn's tool calls with side effects get job ids derived from the request, the tool, its
    arguments and how many identical calls came before in this turn. A turn replayed after a crash
    (a chat bridge seeing the same message again) then finds the jobs it already started — and
    reports them — instead of running a write tool a second time; the slash commands' guard, for
    the model's own calls."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self._seen: Counter[tuple[str, str]] = Counter()

    def job_id(self, name: str, arguments: dict[str, Any]) -> str:
        canon = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)
        n = self._seen[(name, canon)]
        self._seen[(name, canon)] += 1  # synchronous: parallel calls of one step are numbered in call order
        return hashlib.sha256(f"sovhub.tool.{self.request_id}.{name}.{canon}.{n}".encode()).hexdigest()[:16]


class Toolbox:
    def __init__(self, hub) -> None:
        self.hub = hub
        self._specs: dict[Permission, list[ToolSpec]] = {}

    def specs(self, grant: Permission) -> list[ToolSpec]:
        """Tool specs for a caller; cached per grant (the registry does not change while running)."""
        if grant not in self._specs:
            allowed = self.hub.skills.allowed(grant)
            skills = [ToolSpec(s.name, s.description, _schema(s.input_schema())) for s in allowed]
            self._specs[grant] = skills + [t for n, t in HUB_TOOLS.items() if n not in self.hub.skills]
        return self._specs[grant]

    async def run(self, call: ToolCall, context: Context, grant: Permission, approver: Approver | None,
                  guard: ReplayGuard | None = None) -> Message:
        try:
            content = await self._run(call, context, grant, approver, guard)
            return Message("tool", _clip(content), tool_call_id=call.id, name=call.name)
        except HubError as exc:
            error = str(exc)
        except Exception as exc:  # a tool failure is the model's information, not the turn's end
            error = f"{type(exc).__name__}: {exc}"
        return Message("tool", _clip(f"error: {error}"), tool_call_id=call.id, name=call.name, is_error=True)

    async def _run(self, call: ToolCall, context: Context, grant: Permission, approver: Approver | None,
                   guard: ReplayGuard | None = None) -> str:
        if call.raw_arguments:
            raise HubError(f"the arguments for {call.name} are not a JSON object: {call.raw_arguments[:200]}")
        if call.name in HUB_TOOLS and call.name not in self.hub.skills:
            return await self._hub_tool(call)
        if call.name not in self.hub.skills:
            raise HubError(f"there is no tool named {call.name}")
        skill = self.hub.skills.get(call.name)
        if skill.permission > grant:
            raise HubError(f"{call.name} needs {skill.permission.name} permission; this conversation has {grant.name}")
        if skill.permission is Permission.destructive and approver is None:
            raise HubError(f"{call.name} is destructive and needs a human's approval, which cannot be asked here")
        if guard is not None and skill.permission >= Permission.write:
            return await self._run_once(call, guard.job_id(call.name, call.arguments), context, grant, approver)
        result = await self.hub.run_skill(call.name, call.arguments, context.child(), grant=grant, approver=approver)
        return result.model_dump_json()

    async def _run_once(self, call: ToolCall, job_id: str, context: Context, grant: Permission,
                        approver: Approver | None) -> str:
        """Follow the job this call already started (resumed after a restart), report how it ended, or
        start it under that id (on disk before the skill runs)."""
        handle = self.hub.jobs.active.get(job_id)
        if handle is None:
            try:
                record = await self.hub.jobs.get(job_id)
            except UnknownJob:
                record = None
            if record is not None:
                if record.status == "succeeded":
                    return json.dumps({"already_done": f"{call.name} ran for this message before (job {record.id}); "
                                                       "it is not run again", "result": record.result}, default=str)
                state = record.status if record.status not in FINAL else f"ended {record.status}"
                raise HubError(f"{call.name} was already started for this message (job {record.id}) and {state}"
                               f"{': ' + record.error if record.error else ''}; it is not run again")
            handle = await self.hub.start_skill(call.name, call.arguments, context.child(), grant=grant,
                                                approver=approver, job_id=job_id)
        result = await handle.wait()
        return result.model_dump_json()

    async def _hub_tool(self, call: ToolCall) -> str:
        if call.name == "hub_status":
            return json.dumps(await self.hub.status(), default=str)
        limit = int(call.arguments.get("limit", 10))
        jobs = await self.hub.jobs.list(limit=max(1, min(limit, 50)), status=call.arguments.get("status"))
        return json.dumps([{"id": j.id, "skill": j.skill, "status": j.status, "error": j.error} for j in jobs],
                          default=str)


def _schema(schema: dict[str, Any]) -> dict[str, Any]:
    schema = dict(schema)
    schema.pop("title", None)
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


def _clip(text: str) -> str:
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + " …(truncated)"
