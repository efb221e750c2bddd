"""Jobs: every skill run, from any origin, is a job row with its events in SQLite.

One path (`JobManager.start`) validates, checks permission and approval, records, leases the GPU
resident when the skill needs one, runs with a timeout and progress, and records the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from hub.approval import Approval, Approver, Mode
from hub.context import Context, new_id
from hub.errors import (
    ApprovalDenied,
    HubError,
    InvalidParams,
    JobCancelled,
    PermissionDenied,
    SkillFailed,
    SkillTimeout,
    StoreError,
    UnknownJob,
)
from hub.gpu.api import Lease
from hub.registry import Permission, Skill

if TYPE_CHECKING:
    from hub.core import Hub

log = logging.getLogger(__name__)

FINAL = ("succeeded", "failed", "cancelled", "rejected", "refused", "denied")


@dataclass(frozen=True)
class Progress:
    done: float
    total: float | None = None
    message: str = ""


@dataclass
class JobRecord:
    id: str
    skill: str
    status: str
    params: dict[str, Any]
    context: Context
    resident: str | None
    job_class: str
    result: dict[str, Any] | None
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    grant: Permission = Permission.write  # the caller's permission, kept so a resumed job has no more

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class SkillRun:
    """What a skill handler gets: its job, its context, progress, GPU leases, a scratch directory."""

    def __init__(self, hub: Hub, skill: Skill, job_id: str, context: Context, handle: JobHandle) -> None:
        self.hub = hub
        self.skill = skill
        self.job_id = job_id
        self.context = context
        self._handle = handle
        self._artifacts: Path | None = None
        self.lease: Lease | None = None  # the GPU lease held right now (the skill's declared resident's)

    @property
    def config(self):
        return self.hub.config

    @property
    def grant(self) -> Permission:
        """The caller's permission: what this job may pass on to the skills it starts."""
        return self._handle.grant

    @property
    def artifacts_dir(self) -> Path:
        if self._artifacts is None:
            self._artifacts = self.hub.config.storage.artifacts_dir / self.job_id
            self._artifacts.mkdir(parents=True, exist_ok=True)
        return self._artifacts

    async def progress(self, done: float, total: float | None = None, message: str = "") -> None:
        progress = Progress(done, total, message)
        self._handle.progress = progress
        await self.hub.jobs.add_event(self.job_id, "progress",
                                      {"done": done, "total": total, "message": message})
        await self.hub.bus.fire("job_progress", {"job_id": self.job_id, "skill": self.skill.name,
                                                 "done": done, "total": total, "message": message},
                                self.context)
        for callback in list(self._handle._progress_callbacks):
            try:
                result = callback(progress)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("progress callback failed for job %s", self.job_id)

    async def log(self, message: str, **data: Any) -> None:
        await self.hub.jobs.add_event(self.job_id, "log", {"message": message, **data})

    @contextlib.asynccontextmanager
    async def use_resident(self, name: str, est_seconds: float | None = None,
                           then: str | None = None, checkpoint_s: float | None = None) -> AsyncIterator[Lease]:
        """Hold the GPU resident `name` for a step of this job (queues behind swaps). With
        `checkpoint_s`, the step calls `lease.checkpoint()` after each piece of work and may be asked
        to give the GPU away there for a while (it resumes where it stopped)."""
        await self.hub.jobs.add_event(self.job_id, "lease_wait", {"resident": name})
        async with self.hub.gpu.lease(
            name, job_id=self.job_id, context=self.context, job_class=self._handle.job_class,
            priority=self._handle.priority, est_seconds=est_seconds or self.skill.est_seconds, then=then,
            label=self.skill.name, **({"checkpoint_s": checkpoint_s} if checkpoint_s else {}),
        ) as lease:
            await self.hub.jobs.add_event(self.job_id, "lease_granted", {"resident": name})
            outer, self.lease = self.lease, lease
            try:
                yield lease
            finally:
                self.lease = outer


class JobHandle:
    def __init__(self, job_id: str, skill: Skill, context: Context, job_class: str, priority: int,
                 grant: Permission = Permission.write) -> None:
        self.id = job_id
        self.grant = grant
        self.skill = skill
        self.context = context
        self.job_class = job_class
        self.priority = priority
        self.status = "queued"
        self.progress: Progress | None = None
        self.result: BaseModel | None = None
        self.error: str | None = None
        self._done: asyncio.Future[BaseModel] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task | None = None
        self._progress_callbacks: list[Callable[[Progress], Any]] = []

    def on_progress(self, callback: Callable[[Progress], Any]) -> Callable[[], None]:
        self._progress_callbacks.append(callback)
        return lambda: self._progress_callbacks.remove(callback) if callback in self._progress_callbacks else None

    def _fail(self, exc: BaseException) -> None:
        """End with an error. A job nobody waits for (a deferred MCP call, a schedule) must not log
        "exception was never retrieved": reading it back marks it retrieved, here rather than in a
        done-callback that every job, failed or not, paid a loop callback for."""
        self._done.set_exception(exc)
        self._done.exception()

    @property
    def done(self) -> bool:
        return self._done.done()

    async def wait(self, timeout: float | None = None) -> BaseModel:
        """The result; raises the job's error. On timeout raises TimeoutError and the job goes on."""
        if timeout is None:
            return await asyncio.shield(self._done)
        return await asyncio.wait_for(asyncio.shield(self._done), timeout)

    async def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


@dataclass
class _Start:
    skill: Skill
    raw_params: dict[str, Any]
    context: Context
    grant: Permission
    approval: Approval
    job_class: str
    priority: int
    job_id: str = field(default_factory=new_id)


class JobManager:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.active: dict[str, JobHandle] = {}
        self._stopping = False

    @property
    def db(self):
        return self.hub.store.db

    # -- the one path ----------------------------------------------------------------------------
    async def start(self, name: str, params: dict[str, Any] | BaseModel | None, context: Context, *,
                    grant: Permission = Permission.write, approver: Approver | None = None,
                    approval: Approval | None = None, job_class: str | None = None, priority: int = 0,
                    job_id: str | None = None, resume: bool = False) -> JobHandle:
        """Approval (see hub/approval.py) is enforced here and in `_run`, nowhere else."""
        if self._stopping and not resume:  # the bridges serve until they stop, after the jobs (Hub.stop)
            raise HubError(f"the hub is stopping: {name} was not started")
        skill = self.hub.skills.get(name)
        approval = Approval.of(approval, approver)
        raw = params.model_dump(mode="json") if isinstance(params, BaseModel) else dict(params or {})
        klass = job_class or ("scheduled" if context.origin == "cron" else skill.job_class)
        start = _Start(skill, raw, context, grant, approval, klass, priority, job_id or new_id())
        if resume:
            await self._set_status(start.job_id, "queued")
            self._event(start.job_id, "requeued", {"reason": "hub restart"})
        else:
            await self._insert(start)
        try:
            model = skill.validate_params(raw)
        except InvalidParams as exc:
            await self._finish_early(start, "rejected", str(exc))
            raise
        if skill.permission is Permission.destructive and approval.mode is Mode.refused:
            await self._finish_early(start, "refused", approval.reason)
            raise PermissionDenied(approval.reason)
        if skill.permission > grant:
            msg = (f"{skill.name} needs {skill.permission.name} permission; this caller has "
                   f"{Permission(grant).name}")
            await self._finish_early(start, "refused", msg)
            raise PermissionDenied(msg)
        handle = JobHandle(start.job_id, skill, context, klass, priority, grant)
        if job_id is not None and not resume:
            try:
                await self.flush()  # a caller-chosen (idempotent) id is on disk before the skill can run
            except StoreError as exc:  # e.g. disk full: it never runs, and its queued rows end "failed"
                await self._finish_early(start, "failed", str(exc))
                raise
        self.active[handle.id] = handle
        handle._task = asyncio.create_task(self._run(start, model, handle), name=f"job-{handle.id}")
        await self.hub.bus.fire("job_queued", {"job_id": handle.id, "skill": skill.name,
                                               "job_class": klass}, context)
        return handle

    async def _run(self, start: _Start, params: BaseModel, handle: JobHandle) -> None:
        skill, ctx = start.skill, start.context
        try:
            if skill.permission is Permission.destructive and start.approval.mode is Mode.interactive:
                await self._set_status(handle.id, "waiting_approval")
                self._event(handle.id, "approval_requested", {})
                approved = await start.approval.approver(skill, params, ctx)
                self._event(handle.id, "approval", {"approved": bool(approved)})
                if not approved:
                    raise ApprovalDenied(f"{skill.name} was not approved")
            run = SkillRun(self.hub, skill, handle.id, ctx, handle)
            if skill.resident:
                async with run.use_resident(skill.resident):
                    result = await self._run_handler(run, params, handle)
            else:
                result = await self._run_handler(run, params, handle)
        except asyncio.CancelledError:
            if self._stopping and handle.status == "queued":
                return  # stays queued in SQLite: it runs again after the restart
            if self._stopping:
                await self._complete(handle, "failed", error="interrupted by hub shutdown")
                handle._fail(SkillFailed(f"job {handle.id} was interrupted by hub shutdown"))
                return
            await self._complete(handle, "cancelled", error="cancelled")
            handle._fail(JobCancelled(f"job {handle.id} ({skill.name}) was cancelled"))
            return
        except ApprovalDenied as exc:
            await self._complete(handle, "denied", error=str(exc))
            handle._fail(exc)
            return
        except Exception as exc:
            message = str(exc) if isinstance(exc, HubError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, HubError):
                log.exception("skill %s failed (job %s)", skill.name, handle.id)
            await self._complete(handle, "failed", error=message)
            handle._fail(exc if isinstance(exc, HubError) else SkillFailed(
                f"{skill.name} failed: {message}"))
            return
        finally:
            self.active.pop(handle.id, None)
        handle.result = result
        await self._complete(handle, "succeeded", result=result)
        handle._done.set_result(result)

    async def _run_handler(self, run: SkillRun, params: BaseModel, handle: JobHandle) -> BaseModel:
        skill = run.skill
        handle.status = "running"
        now = time.time()
        self._write("UPDATE jobs SET status='running', started_at=? WHERE id=?", (now, handle.id))
        self._event(handle.id, "started", {})
        if skill.permission >= Permission.write:
            # A skill with side effects is on disk as running before it acts, so a crash right after
            # can never make the restart run it a second time; read-only skills stay on the fast path.
            await self.flush()
        await self.hub.bus.fire("job_started", {"job_id": handle.id, "skill": skill.name}, run.context)
        try:
            async with asyncio.timeout(skill.timeout_s):
                out = await skill.handler(run, params)
        except TimeoutError:
            raise SkillTimeout(f"{skill.name} timed out after {skill.timeout_s:g} s") from None
        if isinstance(out, skill.result):
            return out
        try:
            return skill.result.model_validate(out.model_dump() if isinstance(out, BaseModel) else out)
        except ValidationError as exc:
            raise SkillFailed(f"{skill.name} returned an invalid result: {exc.errors()[0]['msg']}") from None

    # -- persistence -----------------------------------------------------------------------------
    async def _insert(self, s: _Start) -> None:
        ctx = s.context
        self._write(
            "INSERT INTO jobs(id, skill, params, status, context, origin, user, parent_id, resident, job_class,"
            " priority, created_at) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)",
            (s.job_id, s.skill.name, json.dumps(s.raw_params, default=str),
             json.dumps({**ctx.as_dict(), "grant": int(s.grant)}),
             ctx.origin, ctx.user, ctx.id, s.skill.resident, s.job_class, s.priority, time.time()))
        self._event(s.job_id, "queued", {"origin": ctx.origin, "user": ctx.user})

    async def _finish_early(self, s: _Start, status: str, error: str) -> None:
        self._write("UPDATE jobs SET status=?, error=?, finished_at=? WHERE id=?",
                    (status, error, time.time(), s.job_id))
        self._event(s.job_id, status, {"error": error})
        await self.hub.bus.fire("job_finished", {"job_id": s.job_id, "skill": s.skill.name, "status": status,
                                                 "error": error}, s.context)

    async def _set_status(self, job_id: str, status: str) -> None:
        handle = self.active.get(job_id)
        if handle:
            handle.status = status
        self._write("UPDATE jobs SET status=? WHERE id=?", (status, job_id))

    async def _complete(self, handle: JobHandle, status: str, *, result: BaseModel | None = None,
                        error: str | None = None) -> None:
        handle.status, handle.error = status, error
        payload = result.model_dump_json() if result is not None else None
        self._write("UPDATE jobs SET status=?, result=?, error=?, finished_at=? WHERE id=?",
                    (status, payload, error, time.time(), handle.id))
        self._event(handle.id, status, {"error": error} if error else {})
        if status == "succeeded" and handle.skill.permission >= Permission.write:
            # A side effect happened: its success row is on disk before anyone is told, so a crash
            # after the caller heard "done" can never make the restart report it as interrupted.
            await self.flush()
        await self.hub.bus.fire("job_finished", {"job_id": handle.id, "skill": handle.skill.name,
                                                 "status": status, "error": error}, handle.context)

    async def add_event(self, job_id: str, type_: str, data: dict[str, Any]) -> None:
        self._event(job_id, type_, data)

    def _event(self, job_id: str, type_: str, data: dict[str, Any]) -> None:
        """`add_event` without the await: the row only joins the write-behind queue."""
        self._write("INSERT INTO job_events(job_id, at, type, data) VALUES (?, ?, ?, ?)",
                    (job_id, time.time(), type_, json.dumps(data, default=str) if data else "{}"))

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        """Bookkeeping rows go through the store's write-behind (one transaction per batch)."""
        writer = self.hub.store.writer
        if writer is None:
            raise RuntimeError("the job store has no writer (an in-memory store?)")
        writer.add(sql, params)

    async def flush(self) -> None:
        """Readers of the jobs tables call this first, so they never see stale rows."""
        await self.hub.store.flush()

    # -- queries ---------------------------------------------------------------------------------
    @staticmethod
    def _record(row: Any) -> JobRecord:
        context = json.loads(row["context"])
        return JobRecord(
            id=row["id"], skill=row["skill"], status=row["status"], params=json.loads(row["params"]),
            context=Context.from_dict(context), resident=row["resident"],
            job_class=row["job_class"], result=json.loads(row["result"]) if row["result"] else None,
            error=row["error"], created_at=row["created_at"], started_at=row["started_at"],
            finished_at=row["finished_at"], grant=Permission(context.get("grant", Permission.write)))

    async def get(self, job_id: str) -> JobRecord:
        await self.flush()
        rows = await self.db.execute_fetchall("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            raise UnknownJob(f"no job {job_id!r}")
        return self._record(rows[0])

    async def list(self, limit: int = 20, status: str | None = None) -> list[JobRecord]:
        await self.flush()
        if status:
            rows = await self.db.execute_fetchall(
                "SELECT * FROM jobs WHERE status = ? ORDER BY created_at DESC LIMIT ?", (status, limit))
        else:
            rows = await self.db.execute_fetchall("SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,))
        return [self._record(r) for r in rows]

    async def events(self, job_id: str) -> list[dict[str, Any]]:
        await self.flush()
        rows = await self.db.execute_fetchall(
            "SELECT at, type, data FROM job_events WHERE job_id = ? ORDER BY id", (job_id,))
        return [{"at": r[0], "type": r[1], "data": json.loads(r[2])} for r in rows]

    async def cancel(self, job_id: str) -> str:
        handle = self.active.get(job_id)
        if handle is not None:
            await handle.cancel()
            return "cancelled"
        record = await self.get(job_id)
        if record.status in FINAL:
            return record.status
        self._write("UPDATE jobs SET status='cancelled', error='cancelled', finished_at=? WHERE id=?",
                    (time.time(), job_id))
        self._event(job_id, "cancelled", {})
        return "cancelled"

    async def resume_after_restart(self) -> None:
        """Queued jobs from before a restart run again; running ones are failed with a notice."""
        await self.flush()
        rows = await self.db.execute_fetchall(
            "SELECT * FROM jobs WHERE status IN ('queued', 'running', 'waiting_approval') ORDER BY created_at")
        for row in rows:
            record = self._record(row)
            known = record.skill in self.hub.skills
            needs_approval = known and self.hub.skills.get(record.skill).permission is Permission.destructive
            if record.status != "queued" or not known or needs_approval:
                note = ("its skill is no longer available" if not known
                        else "not resumed after a hub restart: a destructive skill needs a fresh approval"
                        if needs_approval and record.status == "queued"
                        else "interrupted by a hub restart")
                self._write("UPDATE jobs SET status='failed', error=?, finished_at=? WHERE id=?",
                            (note, time.time(), record.id))
                self._event(record.id, "failed", {"error": note})
                await self.hub.bus.fire("job_finished", {"job_id": record.id, "skill": record.skill,
                                                         "status": "failed", "error": note}, record.context)
                continue
            try:
                await self.start(record.skill, record.params, record.context, grant=record.grant,
                                 job_class=record.job_class, job_id=record.id, resume=True)
            except HubError as exc:
                log.warning("could not resume job %s: %s", record.id, exc)

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel what still runs, bounded in time."""
        self._stopping = True
        handles = list(self.active.values())
        for handle in handles:
            if handle._task and not handle._task.done():
                handle._task.cancel()
        tasks = [h._task for h in handles if h._task]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        await self.flush()
