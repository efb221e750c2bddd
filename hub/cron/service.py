"""The schedules service (`hub.cron`): APScheduler 3 fed from SQLite, runs through the hub's one path.

APScheduler keeps its jobs in a MemoryJobStore rebuilt from the `schedules` table at start (and on
every change, also changes written by the CLI while the hub runs): SQLite is the only store, so
there is nothing to drift. Each slot fires `_fire`, which starts the skill with a `cron` context
(the job runner gives it job class `scheduled` in the GPU queue) and returns at once; the run is
closed by the `job_finished` event, so a run that is still going (running, or waiting in the GPU
queue) is seen by the next slot, which is then skipped and recorded.

Missed slots: each APScheduler job gets the stored `next_run_at` as its next run time, with
coalesce and a grace time, so slots missed while the hub was down run once at start (or are
recorded as missed when older than the grace time).

Only one process fires schedules: the one holding the `schedules.owner` lease in SQLite (a hub and
a demo on the same data directory never double-run a slot). Others still add, list and edit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import socket
import sqlite3
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from hub.context import Context, new_id
from hub.cron import render
from hub.cron.book import ROOM_RE, SCHEDULE_GRANT, ScheduleBook
from hub.cron.model import Schedule, ScheduleRun
from hub.cron.parse import parse_add, split_words
from hub.cron.triggers import ScheduleError, TriggerSpec, as_epoch, build, parse_trigger
from hub.errors import ConfigError, HubError, UnknownJob
from hub.events import Event
from hub.jobs import FINAL
from hub.store.health import describe

if TYPE_CHECKING:
    from hub.core import Hub

log = logging.getLogger(__name__)

LEASE_KEY = "schedules.owner"
DEFAULT_POLL_S = 3.0  # how soon a change written by the CLI reaches a running hub
USER_PREFIX = "schedule:"


def schedule_of(context: Context) -> str | None:
    """The schedule name a context was made for, or None."""
    user = context.user or ""
    return user[len(USER_PREFIX):] if context.origin == "cron" and user.startswith(USER_PREFIX) else None


def _pid_namespace() -> str | None:
    """This process's PID namespace (pids are only comparable within one), None where unknown."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


class ScheduleService:
    def __init__(self, hub: Hub, *, poll_s: float | None = None) -> None:
        self.hub = hub
        self.book = ScheduleBook(hub.store, hub.skills)
        self.poll_s = poll_s if poll_s is not None else DEFAULT_POLL_S
        self.active = False  # this process holds the lease and fires schedules
        self.error: str | None = None  # why the last tick failed (shown by `status()`), None when fine
        self._aps = AsyncIOScheduler(timezone=UTC, jobstores={"default": MemoryJobStore()},
                                     job_defaults={"coalesce": True, "max_instances": 1})
        self._loaded: dict[str, tuple[Any, ...]] = {}
        self._slots: dict[str, float] = {}
        self._starting: set[str] = set()  # context ids of runs whose job is being created
        self._tasks: set[asyncio.Task] = set()
        self._unsubscribe: list[Any] = []
        self._opening: dict[str, asyncio.Future[Any]] = {}  # context id -> its run_started write
        self._poll_task: asyncio.Task | None = None
        self._token = new_id()
        self._lock = asyncio.Lock()

    # -- life cycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        """Sync the config's schedules and listen to jobs; firing starts once the hub has started."""
        try:
            changes = await self.book.sync_config(self.hub.config.schedules)
        except ScheduleError as exc:
            raise ConfigError(f"config: {exc}") from None
        if changes:
            log.info("schedules from config: %s", ", ".join(changes))
        bus = self.hub.bus
        self._unsubscribe = [bus.listen("job_finished", self._on_job_finished),
                             bus.listen("job_started", self._on_job_started),
                             bus.listen("hub_started", self._on_hub_started),
                             bus.listen("hub_stopping", self._on_hub_stopping)]

    async def _on_hub_started(self, event: Event) -> None:
        await self.start()

    async def _on_hub_stopping(self, event: Event) -> None:
        """No new slot may start a job while the hub winds its jobs down."""
        if self._aps.running:
            self._aps.pause()

    async def start(self) -> None:
        if self._poll_task is not None:
            return
        self._aps.add_listener(self._on_aps_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_SUBMITTED)
        self._aps.start()
        # The poll task exists whatever the first tick does: a locked or full DB at start-up only
        # delays firing until the store recovers, it never stops the schedules for good.
        await self._tick_logged()
        self._poll_task = asyncio.create_task(self._poll(), name="schedules-poll")

    async def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._poll_task is not None:
            self._poll_task.cancel()
            await asyncio.gather(self._poll_task, return_exceptions=True)
            self._poll_task = None
        if self._aps.running:
            self._aps.remove_all_jobs()
            self._aps.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down from the loop
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
            for task in list(self._tasks):
                task.cancel()
        if self.active:
            await self._release()
        self.active = False

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            await self._tick_logged()

    async def _tick_logged(self) -> None:
        """One tick; a failure is recorded (log, storage health, `status()`) and retried by the next poll."""
        try:
            await self.tick()
        except sqlite3.Error as exc:
            self.error = f"cannot read or lease the schedules: {describe(exc)}; retrying every {self.poll_s:g} s"
            self.hub.store.health.failed(exc, "schedules")
            log.error("schedules: %s", self.error)
        except Exception as exc:
            self.error = f"reload from SQLite failed: {type(exc).__name__}: {exc}"
            log.exception("schedules: reload from SQLite failed")
        else:
            if self.error is not None:
                log.info("schedules: the store answers again; schedules run")
                self.hub.store.health.ok()
            self.error = None

    async def tick(self) -> None:
        """Renew (or take) the lease; load what changed in SQLite into APScheduler."""
        async with self._lock:
            owned = await self._claim()
            if owned and not self.active:
                await self._recover()
                self.active = True
                log.info("schedules: this process runs the schedules")
            elif not owned and self.active:
                log.warning("schedules: another process took over the schedules")
                self._aps.remove_all_jobs()
                self._loaded.clear()
                self.active = False
            if self.active:
                await self._reconcile()

    # -- the lease -------------------------------------------------------------------------------
    async def _claim(self) -> bool:
        now = time.time()
        stale = max(10.0, 3 * self.poll_s)
        value = json.dumps({"token": self._token, "pid": os.getpid(), "host": socket.gethostname(),
                            "pidns": _pid_namespace()})
        dead = await self._dead_holder()
        cur = await self.hub.store.db.execute(
            "INSERT INTO kv(key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
            "value = excluded.value, updated_at = excluded.updated_at "
            "WHERE kv.updated_at < ? OR json_extract(kv.value, '$.token') IN (?, ?)",
            (LEASE_KEY, value, now, now - stale, self._token, dead or self._token))
        return cur.rowcount == 1

    async def _dead_holder(self) -> str | None:
        """The token of a lease held by a process of this host that no longer exists (killed), else None.

        A restart after kill -9 then fires at once instead of waiting for the lease to go stale.
        Only a holder in the same PID namespace on the same host is checked; anything else waits.
        """
        rows = await self.hub.store.db.execute_fetchall("SELECT value FROM kv WHERE key = ?", (LEASE_KEY,))
        if not rows:
            return None
        try:
            holder = json.loads(rows[0][0])
            token, pid = str(holder["token"]), int(holder["pid"])
        except (ValueError, KeyError, TypeError):
            return None
        if token == self._token or holder.get("host") != socket.gethostname():
            return None
        if holder.get("pidns") is None or holder.get("pidns") != _pid_namespace():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return token
        except OSError:
            return None
        return None

    async def _release(self) -> None:
        await self.hub.store.db.execute("DELETE FROM kv WHERE key = ? AND json_extract(value, '$.token') = ?",
                                        (LEASE_KEY, self._token))

    # -- SQLite -> APScheduler -------------------------------------------------------------------
    async def _reconcile(self) -> None:
        schedules = {s.id: s for s in await self.book.all()}
        for schedule_id in list(self._loaded):
            if schedule_id not in schedules:
                self._unload(schedule_id)
        for schedule in schedules.values():
            if self._loaded.get(schedule.id) != schedule.definition():
                await self._load(schedule)

    def _unload(self, schedule_id: str) -> None:
        self._loaded.pop(schedule_id, None)
        if self._aps.get_job(schedule_id) is not None:
            self._aps.remove_job(schedule_id)

    async def _load(self, schedule: Schedule) -> None:
        self._unload(schedule.id)
        self._loaded[schedule.id] = schedule.definition()
        if not schedule.enabled or schedule.done:
            return
        try:
            trigger = build(schedule.trigger, anchor=schedule.created_at)
        except ScheduleError as exc:
            log.error("schedule %s cannot be loaded: %s", schedule.name, exc)
            return
        next_at = schedule.next_run_at
        if next_at is None:
            next_at = self.book.first_run(schedule.trigger, time.time(), anchor=schedule.created_at)
            await self.book.set_next_run(schedule.id, next_at)
            if next_at is None:
                return
        self._aps.add_job(self._fire, trigger=trigger, args=[schedule.id], id=schedule.id, name=schedule.name,
                          next_run_time=datetime.fromtimestamp(next_at, UTC), coalesce=True, max_instances=1,
                          misfire_grace_time=max(1, math.ceil(schedule.grace)), replace_existing=True)
        if next_at < time.time():
            log.info("schedule %s missed its slot at %s while the hub was down: it runs once now (if within "
                     "its %s grace time)", schedule.name, render.local_time(next_at, schedule.timezone),
                     render.duration(schedule.grace))

    def next_run(self, name_or_id: str) -> datetime | None:
        """APScheduler's next run time for a schedule (None when not loaded or not active here)."""
        for job in self._aps.get_jobs():
            if job.id == name_or_id or job.name == name_or_id:
                return job.next_run_time
        return None

    def _aps_next(self, schedule_id: str) -> float | None:
        job = self._aps.get_job(schedule_id)
        return as_epoch(job.next_run_time) if job is not None else None

    # -- firing ----------------------------------------------------------------------------------
    async def _fire(self, schedule_id: str) -> None:
        """One slot: skip if the previous run still goes, else take the slot, start the skill and return.

        Crash-safe at every step: the slot and its run (with the job id to come) are written in one
        transaction, the job row is on disk before the skill runs, and `_recover` finishes at the
        restart whatever a kill interrupted, so a slot runs exactly once.
        """
        slot = self._slots.pop(schedule_id, None)
        schedule = await self.book.by_id(schedule_id)
        if schedule is None or not schedule.enabled:
            return
        now = time.time()
        busy = await self._still_running(schedule)
        if busy is not None:
            await self.book.mark_fired(schedule.id, now, self._aps_next(schedule.id))
            job_id, status = busy
            message = f"skipped: the previous run (job {job_id}) is still {status}"
            await self.book.insert_run(schedule.id, status="skipped", error=message, scheduled_for=slot,
                                       finished=True)
            log.warning("schedule %s %s", schedule.name, message)
            return
        context = Context.new("cron", user=f"{USER_PREFIX}{schedule.name}")
        job_id = new_id()
        self._starting.add(context.id)
        try:
            try:
                run_id = await self.book.take_slot(schedule.id, at=now, next_run_at=self._aps_next(schedule.id),
                                                   context_id=context.id, job_id=job_id, scheduled_for=slot)
            except sqlite3.Error as exc:
                # Nothing was written: the slot is still due in SQLite. Reload it at the next poll, so it
                # fires once the store can write again (within its grace time, else it is recorded missed).
                self.hub.store.health.failed(exc, "schedules")
                self._loaded.pop(schedule.id, None)
                log.error("schedule %s could not take its slot (%s); retried at the next poll", schedule.name,
                          describe(exc))
                return
            await self._start_job(schedule, run_id, context, job_id)
        finally:
            self._starting.discard(context.id)

    async def _start_job(self, schedule: Schedule, run_id: int, context: Context, job_id: str) -> None:
        try:
            handle = await self.hub.start_skill(schedule.skill, schedule.params, context, grant=SCHEDULE_GRANT,
                                                job_id=job_id)
        except HubError as exc:
            run = await self.book.finish_run(run_id=run_id, status="failed", error=str(exc))
            if run is not None:
                await self._announce(schedule, run, context)
            return
        log.info("schedule %s started job %s (%s)", schedule.name, handle.id, schedule.skill)

    async def _recover(self) -> None:
        """At the restart (once this process fires): finish the runs a crash left open.

        A run whose job was never created gets it now, with the id and context recorded at fire
        time; a run whose job ended (or will not resume) is closed with that outcome. Queued jobs
        were already resumed by the job runner and close their run when they finish.
        """
        for run in await self.book.all_open_runs():
            if run.context_id in self._starting or (run.job_id and run.job_id in self.hub.jobs.active):
                continue
            schedule = await self.book.by_id(run.schedule_id)
            record = await self._job_record(run.job_id)
            if schedule is not None and run.job_id and run.context_id and record is None:
                context = Context(origin="cron", user=f"{USER_PREFIX}{schedule.name}", id=run.context_id,
                                  created_at=run.started_at or time.time())
                log.warning("schedule %s: the hub stopped before job %s of its %s run was created; starting it now",
                            schedule.name, run.job_id, render.local_time(run.scheduled_for or run.started_at,
                                                                          schedule.timezone))
                await self._start_job(schedule, run.id, context, run.job_id)
                continue
            status, error = self._lost(record)
            closed = await self.book.finish_run(run_id=run.id, status=status, error=error)
            if closed is not None and schedule is not None:
                await self._announce(schedule, closed, Context.new("cron", user=f"{USER_PREFIX}{schedule.name}"))

    async def _job_record(self, job_id: str | None) -> Any:
        """The job row a run names, or None when it has none or the row was never written."""
        if not job_id:
            return None
        try:
            return await self.hub.jobs.get(job_id)
        except UnknownJob:
            return None

    @staticmethod
    def _lost(record: Any) -> tuple[str, str | None]:
        """How an open run whose job is not running ends: with its job's outcome, else failed."""
        if record is None:
            return "failed", "its job was lost (hub stopped before it was created)"
        if record.status in FINAL:
            return record.status, record.error
        return "failed", f"its job stayed {record.status} without running"

    async def _still_running(self, schedule: Schedule) -> tuple[str, str] | None:
        """(job id, status) of a previous run that has not finished; closes runs that were lost."""
        for run in await self.book.open_runs(schedule.id):
            if run.context_id in self._starting:
                return run.job_id or "being created", "starting"
            if run.job_id and run.job_id in self.hub.jobs.active:
                return run.job_id, self.hub.jobs.active[run.job_id].status
            record = await self._job_record(run.job_id)
            status, error = self._lost(record)
            await self.book.finish_run(run_id=run.id, status=status, error=error)
        return None

    def _on_aps_event(self, event: Any) -> None:
        """APScheduler events come in synchronously: record them in tasks."""
        if event.code == EVENT_JOB_SUBMITTED:
            if event.scheduled_run_times:
                self._slots[event.job_id] = event.scheduled_run_times[-1].timestamp()
            return
        if event.code == EVENT_JOB_MISSED:
            self._spawn(self._record_missed(event.job_id, event.scheduled_run_time))
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            self._spawn(self._record_overlap(event.job_id))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record_missed(self, schedule_id: str, slot: datetime) -> None:
        schedule = await self.book.by_id(schedule_id)
        if schedule is None:
            return
        late = time.time() - slot.timestamp()
        await self.book.mark_fired(schedule.id, time.time(), self._aps_next(schedule.id))
        error = (f"the {render.local_time(slot.timestamp(), schedule.timezone)} slot was missed by "
                 f"{render.duration(late)} while the hub was not running (grace time "
                 f"{render.duration(schedule.grace)})")
        run_id = await self.book.insert_run(schedule.id, status="missed", error=error,
                                            scheduled_for=slot.timestamp(), finished=True)
        log.warning("schedule %s: %s", schedule.name, error)
        runs = [r for r in await self.book.runs(schedule.id, 5) if r.id == run_id]
        if runs:
            await self._announce(schedule, runs[0], Context.new("cron", user=f"{USER_PREFIX}{schedule.name}"))

    async def _record_overlap(self, schedule_id: str) -> None:
        schedule = await self.book.by_id(schedule_id)
        if schedule is not None:
            await self.book.insert_run(schedule.id, status="skipped", finished=True,
                                       error="skipped: the previous slot was still starting its run")

    # -- outcomes --------------------------------------------------------------------------------
    def _on_job_started(self, event: Event) -> None:
        """The bus does not wait for listeners: the run is marked started by a task that the
        run's finish awaits first, so a quick job can never be closed before it was opened."""
        if schedule_of(event.context) is not None:
            self._opening[event.context.id] = asyncio.ensure_future(self.book.run_started(event.context.id))

    def _on_job_finished(self, event: Event) -> Awaitable[None] | None:
        """Only a scheduled job's end becomes a (bus-tracked) task: every other job, e.g. each MCP
        call, used to pay a task and its loop steps here to learn it was not one of ours."""
        if schedule_of(event.context) is None:
            return None
        return self._close_run(event)

    async def _close_run(self, event: Event) -> None:
        opening = self._opening.pop(event.context.id, None)
        if opening is not None:
            await asyncio.gather(opening, return_exceptions=True)
        data = event.data
        await self.hub.jobs.flush()  # the job's outcome is on disk before its run is closed
        run = await self.book.finish_run(context_id=event.context.id, status=str(data.get("status")),
                                         error=data.get("error"), job_id=data.get("job_id"))
        if run is None:
            return
        schedule = await self.book.by_id(run.schedule_id)
        if schedule is not None:
            await self._announce(schedule, run, event.context)

    async def _announce(self, schedule: Schedule, run: ScheduleRun, context: Context) -> None:
        """Fire `announcement` for the schedule's room (or matrix.announce_room), and log it.

        With no room at all the event still goes out with `room: None`: a chat bridge may post it to
        the rooms that opted in (`/settings announce on`); otherwise the log line is the record.
        Files the result names (an episode, an image) travel with it, for the bridge to upload.
        """
        result = None
        if run.status == "succeeded" and run.job_id:
            try:
                result = (await self.hub.jobs.get(run.job_id)).result
            except UnknownJob:
                result = None
        from hub.commands.skillargs import files_in  # the chat's own rule for a result's files

        files = [{"path": str(path), "kind": kind} for path, kind in files_in(result or {})]
        room = schedule.room or self.hub.config.matrix.announce_room
        log.info("schedule %s -> %s: %s", schedule.name, room or "(no announcement room)",
                 render.announcement(schedule, run, result))  # the log keeps the paths
        sent = {f["path"] for f in files}  # they arrive as media: the text need not repeat them
        shown = {k: v for k, v in result.items() if str(v) not in sent} if result and sent else result
        text = render.announcement(schedule, run, shown)
        await self.hub.bus.fire("announcement", {"room": room, "text": text, "schedule": schedule.name,
                                                 "job_id": run.job_id, "status": run.status, "files": files},
                                context)

    # -- the API (chat, CLI, tests) --------------------------------------------------------------
    async def add(self, name: str, trigger: str | TriggerSpec, skill: str, params: dict[str, Any] | None = None, *,
                  timezone: str = "UTC", room: str | None = None, grace_s: float | None = None,
                  created_by: str | None = None) -> Schedule:
        spec = trigger if isinstance(trigger, TriggerSpec) else parse_trigger(trigger, timezone)
        schedule = await self.book.add(name=name, trigger=spec, skill=skill, params=params, room=room,
                                       grace_s=grace_s, created_by=created_by)
        await self._refresh()
        return schedule

    async def remove(self, name: str) -> Schedule:
        schedule = await self.book.remove(name)
        await self._refresh()
        return schedule

    async def pause(self, name: str) -> Schedule:
        schedule = await self.book.set_enabled(name, False)
        await self._refresh()
        return schedule

    async def resume(self, name: str) -> Schedule:
        schedule = await self.book.set_enabled(name, True)
        await self._refresh()
        return schedule

    async def get(self, name: str) -> Schedule:
        return await self.book.get(name)

    async def list(self) -> list[Schedule]:
        return await self.book.all()

    async def history(self, name: str, limit: int = 5) -> list[ScheduleRun]:
        schedule = await self.book.get(name)
        return await self.book.runs(schedule.id, limit)

    async def _refresh(self) -> None:
        if self.active:
            async with self._lock:
                await self._reconcile()

    def status(self) -> dict[str, Any]:
        """For `hub.status()`: whether this process fires, how many are loaded, the next one due."""
        jobs = [j for j in self._aps.get_jobs() if j.next_run_time is not None] if self._aps.running else []
        nxt = min(jobs, key=lambda j: j.next_run_time, default=None)
        out: dict[str, Any] = {"firing_here": self.active, "loaded": len(jobs),
                               "next": {"schedule": nxt.name, "at": nxt.next_run_time.isoformat()} if nxt else None}
        if self.error is not None:
            out["error"] = self.error
        return out

    # -- chat: /schedule add|list|rm|pause|resume --------------------------------------------------
    async def chat_command(self, action: str, args: str, context: Context, *, room: str | None = None) -> str:
        if action == "list":
            schedules = await self.list()
            if not schedules:
                return "No schedules. Add one: `/schedule add \"0 6 * * *\" <skill> key=value`."
            return "\n\n".join([render.schedule_markdown(s, await self.book.runs(s.id, 3)) for s in schedules])
        if action == "add":
            request = parse_add(args)
            name = request.name or await self._free_name(request.skill)
            here = room if room and ROOM_RE.match(room) else None  # a Matrix room; the terminal demo has none
            schedule = await self.add(name, request.trigger, request.skill, request.params,
                                      timezone=request.timezone, room=request.room or here,
                                      grace_s=request.grace_s, created_by=context.user)
            return (f"Scheduled **{schedule.name}**: `{schedule.skill}` {schedule.trigger.describe()}; next run "
                    f"{render.local_time(schedule.next_run_at, schedule.timezone)}"
                    + (f"; results go to {schedule.room}" if schedule.room else "") + ".")
        if action in ("rm", "pause", "resume"):
            words = split_words(args)
            if len(words) != 1:
                raise ScheduleError(f"usage: /schedule {action} <name>")
            if action == "rm":
                await self.remove(words[0])
                return f"Removed schedule **{words[0]}**."
            schedule = await (self.pause(words[0]) if action == "pause" else self.resume(words[0]))
            if action == "pause":
                return f"Paused **{schedule.name}**."
            return (f"Resumed **{schedule.name}**; next run "
                    f"{render.local_time(schedule.next_run_at, schedule.timezone)}.")
        raise ScheduleError(f"unknown action {action!r} (add, list, rm, pause, resume)")

    async def _free_name(self, skill: str) -> str:
        taken = {s.name for s in await self.list()}
        if skill not in taken:
            return skill
        n = 2
        while f"{skill}-{n}" in taken:
            n += 1
        return f"{skill}-{n}"
