"""The schedule book: validated reads and writes of the `schedules` tables in SQLite.

SQLite is the one source of truth. Both the running hub (through `ScheduleService`) and the CLI
(with no hub running) use this class, so a definition is checked the same way wherever it comes
from, and every check runs before the single write: nothing is ever half-created.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hub.context import new_id
from hub.cron.model import RUN_OPEN, Schedule, ScheduleRun
from hub.cron.triggers import ScheduleError, TriggerSpec, as_epoch, build, from_fields
from hub.errors import InvalidParams, UnknownSkill
from hub.registry import Permission, SkillRegistry

if TYPE_CHECKING:
    from hub.config.schedules import ScheduleConfig
    from hub.store import Store

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ROOM_RE = re.compile(r"^![^\s:]+(:\S+)?$")  # room versions 12+ have ids without a server part
SCHEDULE_GRANT = Permission.write  # runs are unattended: nobody is there to approve a destructive skill
HISTORY_KEEP = 50  # runs kept per schedule
TRIM_RUNS = ("DELETE FROM schedule_runs WHERE schedule_id = ? AND id NOT IN (SELECT id FROM schedule_runs WHERE "
             "schedule_id = ? ORDER BY id DESC LIMIT ?)")


class ScheduleBook:
    def __init__(self, store: Store, skills: SkillRegistry) -> None:
        self.store = store
        self.skills = skills

    @property
    def db(self):
        return self.store.db

    # -- validation (pure, no writes) ------------------------------------------------------------
    def check(self, *, name: str, trigger: TriggerSpec, skill: str, params: dict[str, Any] | None,
              room: str | None = None, grace_s: float | None = None, now: float | None = None,
              allow_past: bool = False) -> None:
        """Raise ScheduleError with a precise message unless this definition can run."""
        if not NAME_RE.match(name or ""):
            raise ScheduleError(f"invalid schedule name {name!r} (1-64 characters: letters, digits, '_', '-', "
                                "'.'; starting with a letter or digit)")
        try:
            item = self.skills.get(skill)
        except UnknownSkill as exc:
            raise ScheduleError(str(exc)) from None
        if item.permission > SCHEDULE_GRANT:
            raise ScheduleError(f"skill {skill} is {item.permission.name}; a schedule runs unattended, so it may "
                                "only run read and write skills")
        raw = dict(params or {})
        fields = item.params.model_fields
        unknown = [k for k in raw if k not in fields]
        if unknown and item.params.model_config.get("extra") != "allow":
            known = ", ".join(fields) or "none"
            raise ScheduleError(f"invalid arguments for {skill}: no parameter {', '.join(map(repr, unknown))} "
                                f"(parameters: {known})")
        try:
            item.validate_params(raw)
        except InvalidParams as exc:
            raise ScheduleError(str(exc)) from None
        if room is not None and not ROOM_RE.match(room):
            raise ScheduleError(f"invalid room {room!r} (expected a Matrix room id like !abc:example.org; "
                                "the room's settings show it)")
        if grace_s is not None and grace_s <= 0:
            raise ScheduleError(f"invalid grace time {grace_s!r}: it must be > 0 seconds")
        if trigger.kind == "at" and not allow_past:
            when = self.first_run(trigger, now if now is not None else time.time())
            if when is None:
                raise ScheduleError(f"the one-shot time {trigger.at} ({trigger.timezone}) is in the past")

    @staticmethod
    def first_run(trigger: TriggerSpec, now: float, *, anchor: float | None = None) -> float | None:
        """The first slot after `now`; None for a one-shot whose time has passed."""
        at = datetime.fromtimestamp(now, UTC)
        built = build(trigger, anchor=anchor)
        when = built.get_next_fire_time(None, at)
        if when is not None and when <= at and trigger.kind != "at":
            when = built.get_next_fire_time(when, at)  # an interval anchored at `now` starts one interval on
        return None if when is None or when <= at else as_epoch(when)

    # -- schedules -------------------------------------------------------------------------------
    async def add(self, *, name: str, trigger: TriggerSpec, skill: str, params: dict[str, Any] | None = None,
                  room: str | None = None, grace_s: float | None = None, source: str = "runtime",
                  created_by: str | None = None, enabled: bool = True) -> Schedule:
        now = time.time()
        self.check(name=name, trigger=trigger, skill=skill, params=params, room=room, grace_s=grace_s, now=now)
        existing = await self.find(name)
        if existing is not None:
            where = " (defined in the config file)" if existing.source == "config" else ""
            raise ScheduleError(f"a schedule named {name!r} already exists{where}; pick another name or remove it "
                                "first")
        schedule = Schedule(
            id=new_id(), name=name, skill=skill, params=dict(params or {}), trigger=trigger, room=room,
            enabled=enabled, source=source, created_at=now, updated_at=now, grace_s=grace_s,
            created_by=created_by, next_run_at=self.first_run(trigger, now, anchor=now) if enabled else None)
        await self.db.execute(
            "INSERT INTO schedules(id, name, skill, params, trigger, timezone, room, enabled, source, created_at,"
            " updated_at, next_run_at, grace_s, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (schedule.id, name, skill, json.dumps(schedule.params), trigger.to_json(), trigger.timezone, room,
             int(enabled), source, now, now, schedule.next_run_at, grace_s, created_by))
        return schedule

    async def find(self, name: str) -> Schedule | None:
        rows = await self.db.execute_fetchall("SELECT * FROM schedules WHERE name = ?", (name,))
        return Schedule.from_row(rows[0]) if rows else None

    async def get(self, name: str) -> Schedule:
        found = await self.find(name)
        if found is None:
            names = [s.name for s in await self.all()]
            known = ", ".join(names) if names else "there are none"
            raise ScheduleError(f"no schedule named {name!r} ({'schedules: ' + known if names else known})")
        return found

    async def by_id(self, schedule_id: str) -> Schedule | None:
        rows = await self.db.execute_fetchall("SELECT * FROM schedules WHERE id = ?", (schedule_id,))
        return Schedule.from_row(rows[0]) if rows else None

    async def all(self) -> list[Schedule]:
        rows = await self.db.execute_fetchall("SELECT * FROM schedules ORDER BY name")
        return [Schedule.from_row(r) for r in rows]

    async def remove(self, name: str) -> Schedule:
        schedule = await self.get(name)
        if schedule.source == "config":
            raise ScheduleError(f"schedule {name!r} is defined in the config file; remove it there (or pause it)")
        await self._delete(schedule.id)
        return schedule

    async def _delete(self, schedule_id: str) -> None:
        """A schedule and its run history go together."""
        async with self.store.transaction() as tx:
            await tx.execute("DELETE FROM schedules WHERE id = ?", (schedule_id,))
            await tx.execute("DELETE FROM schedule_runs WHERE schedule_id = ?", (schedule_id,))

    async def set_enabled(self, name: str, enabled: bool) -> Schedule:
        schedule = await self.get(name)
        if schedule.done:
            raise ScheduleError(f"schedule {name!r} was a one-shot and has already run")
        if enabled and schedule.paused_by == "config":
            raise ScheduleError(f"schedule {name!r} is disabled in the config file (enabled: false); enable it there")
        if schedule.enabled == enabled:
            return schedule
        now = time.time()
        next_at = None
        if enabled:
            next_at = self.first_run(schedule.trigger, now, anchor=schedule.created_at)
            if next_at is None:
                raise ScheduleError(f"schedule {name!r} cannot resume: its one-shot time {schedule.trigger.at} "
                                    "has passed")
        await self.db.execute(
            "UPDATE schedules SET enabled = ?, paused_by = ?, next_run_at = ?, updated_at = ? WHERE id = ?",
            (int(enabled), None if enabled else "runtime", next_at, now, schedule.id))
        return await self.get(name)

    async def mark_fired(self, schedule_id: str, at: float, next_run_at: float | None) -> None:
        await self.db.execute("UPDATE schedules SET last_run_at = ?, next_run_at = ? WHERE id = ?",
                              (at, next_run_at, schedule_id))

    async def set_next_run(self, schedule_id: str, next_run_at: float | None) -> None:
        await self.db.execute("UPDATE schedules SET next_run_at = ? WHERE id = ?", (next_run_at, schedule_id))

    # -- config ----------------------------------------------------------------------------------
    async def sync_config(self, entries: list[ScheduleConfig]) -> list[str]:
        """Make the `source=config` rows match the config file; returns what changed (for the log).

        Every entry is checked before the first write, so a bad config changes nothing.
        """
        now = time.time()
        wanted: dict[str, tuple[ScheduleConfig, TriggerSpec]] = {}
        for i, entry in enumerate(entries):
            where = f"schedules[{i}] ({entry.name})"
            try:
                spec = from_fields(cron=entry.cron, interval_s=entry.interval_s, at=entry.at,
                                   timezone=entry.timezone)
                self.check(name=entry.name, trigger=spec, skill=entry.skill, params=entry.params, room=entry.room,
                           grace_s=entry.grace_s, now=now, allow_past=True)
            except ScheduleError as exc:
                raise ScheduleError(f"{where}: {exc}") from None
            if entry.name in wanted:
                raise ScheduleError(f"{where}: two schedules in the config are named {entry.name!r}")
            wanted[entry.name] = (entry, spec)
        current = {s.name: s for s in await self.all()}
        for name in wanted:
            if name in current and current[name].source != "config":
                raise ScheduleError(f"schedule {name!r} in the config file has the name of a schedule added at run "
                                    "time; rename one of them (or `sovhub schedule rm` the other)")
        changes: list[str] = []
        for name, (entry, spec) in wanted.items():
            old = current.get(name)
            if old is None:
                await self._insert_config(entry, spec, now)
                changes.append(f"added {name}")
            elif self._differs(old, entry, spec):
                await self._update_config(old, entry, spec, now)
                changes.append(f"updated {name}")
        for name, old in current.items():
            if old.source == "config" and name not in wanted:
                await self._delete(old.id)
                changes.append(f"removed {name}")
        return changes

    @staticmethod
    def _differs(old: Schedule, entry: ScheduleConfig, spec: TriggerSpec) -> bool:
        return (old.skill != entry.skill or old.params != entry.params or old.trigger != spec
                or old.room != entry.room or old.grace_s != entry.grace_s
                or (not entry.enabled) != (old.paused_by == "config"))

    async def _insert_config(self, entry: ScheduleConfig, spec: TriggerSpec, now: float) -> None:
        next_at = self.first_run(spec, now, anchor=now) if entry.enabled else None
        done_at = now if spec.kind == "at" and next_at is None else None  # a one-shot already in the past
        await self.db.execute(
            "INSERT INTO schedules(id, name, skill, params, trigger, timezone, room, enabled, source, created_at,"
            " updated_at, next_run_at, last_run_at, grace_s, created_by, paused_by) VALUES"
            " (?, ?, ?, ?, ?, ?, ?, ?, 'config', ?, ?, ?, ?, ?, 'config', ?)",
            (new_id(), entry.name, entry.skill, json.dumps(entry.params), spec.to_json(), spec.timezone, entry.room,
             int(entry.enabled), now, now, next_at, done_at, entry.grace_s, None if entry.enabled else "config"))

    async def _update_config(self, old: Schedule, entry: ScheduleConfig, spec: TriggerSpec, now: float) -> None:
        """The config's definition wins; a pause made at run time survives unless the config disables."""
        if not entry.enabled:
            enabled, paused_by = False, "config"
        elif old.paused_by == "runtime":
            enabled, paused_by = False, "runtime"
        else:
            enabled, paused_by = True, None
        next_at = old.next_run_at
        last_run = old.last_run_at
        if old.trigger != spec or enabled != old.enabled or not enabled:
            next_at = self.first_run(spec, now, anchor=now) if enabled else None
            if spec.kind == "at" and old.trigger != spec:
                last_run = now if next_at is None else None
        await self.db.execute(
            "UPDATE schedules SET skill = ?, params = ?, trigger = ?, timezone = ?, room = ?, enabled = ?,"
            " paused_by = ?, grace_s = ?, next_run_at = ?, last_run_at = ?, updated_at = ? WHERE id = ?",
            (entry.skill, json.dumps(entry.params), spec.to_json(), spec.timezone, entry.room, int(enabled),
             paused_by, entry.grace_s, next_at, last_run, now, old.id))

    # -- runs ------------------------------------------------------------------------------------
    async def insert_run(self, schedule_id: str, *, status: str, context_id: str | None = None,
                         scheduled_for: float | None = None, error: str | None = None,
                         finished: bool = False) -> int:
        now = time.time()
        async with self.store.transaction() as tx:
            run = await tx.execute(
                "INSERT INTO schedule_runs(schedule_id, job_id, started_at, finished_at, status, error, context_id,"
                " scheduled_for) VALUES (?, NULL, ?, ?, ?, ?, ?, ?)",
                (schedule_id, now, now if finished else None, status, error, context_id, scheduled_for))
            if finished:
                await tx.execute("UPDATE schedules SET last_status = ? WHERE id = ?", (status, schedule_id))
            await tx.execute(TRIM_RUNS, (schedule_id, schedule_id, HISTORY_KEEP))
        return int(run.lastrowid)

    async def take_slot(self, schedule_id: str, *, at: float, next_run_at: float | None, context_id: str,
                        job_id: str, scheduled_for: float | None) -> int:
        """One transaction: the slot is used (next run moves on) and its run is recorded with the job id to come.

        Either both are on disk or neither: a crash before leaves the slot due (it runs at the restart as
        a missed slot), a crash after leaves a run whose job id names the job the restart must start.
        """
        now = time.time()
        async with self.store.transaction() as tx:
            await tx.execute("UPDATE schedules SET last_run_at = ?, next_run_at = ? WHERE id = ?",
                             (at, next_run_at, schedule_id))
            run = await tx.execute(
                "INSERT INTO schedule_runs(schedule_id, job_id, started_at, finished_at, status, error, context_id,"
                " scheduled_for) VALUES (?, ?, ?, NULL, 'queued', NULL, ?, ?)",
                (schedule_id, job_id, now, context_id, scheduled_for))
            await tx.execute(TRIM_RUNS, (schedule_id, schedule_id, HISTORY_KEEP))
        return int(run.lastrowid)

    async def all_open_runs(self) -> list[ScheduleRun]:
        rows = await self.db.execute_fetchall(
            f"SELECT * FROM schedule_runs WHERE status IN {RUN_OPEN!r} ORDER BY id")
        return [ScheduleRun.from_row(r) for r in rows]

    async def run_started(self, context_id: str) -> None:
        await self.db.execute(
            "UPDATE schedule_runs SET status = 'running' WHERE context_id = ? AND status = 'queued'", (context_id,))

    async def finish_run(self, *, context_id: str | None = None, run_id: int | None = None, status: str,
                         error: str | None = None, job_id: str | None = None) -> ScheduleRun | None:
        """Close an open run and set its schedule's last status, in one transaction; None when the run
        was already closed (so it is announced once)."""
        key, value = ("context_id", context_id) if context_id is not None else ("id", run_id)
        now = time.time()

        def close(conn: sqlite3.Connection) -> ScheduleRun | None:
            cur = conn.execute(
                f"UPDATE schedule_runs SET status = ?, error = ?, finished_at = ?, job_id = COALESCE(?, job_id) "
                f"WHERE {key} = ? AND status IN ('queued', 'running')", (status, error, now, job_id, value))
            if cur.rowcount == 0:
                return None
            row = conn.execute(f"SELECT * FROM schedule_runs WHERE {key} = ?", (value,)).fetchone()
            run = ScheduleRun.from_row(row)
            conn.execute("UPDATE schedules SET last_status = ? WHERE id = ?", (status, run.schedule_id))
            return run

        async with self.store.transaction() as tx:
            return await tx.run(close)

    async def open_runs(self, schedule_id: str) -> list[ScheduleRun]:
        rows = await self.db.execute_fetchall(
            f"SELECT * FROM schedule_runs WHERE schedule_id = ? AND status IN {RUN_OPEN!r} ORDER BY id",
            (schedule_id,))
        return [ScheduleRun.from_row(r) for r in rows]

    async def runs(self, schedule_id: str, limit: int = 5) -> list[ScheduleRun]:
        rows = await self.db.execute_fetchall(
            "SELECT * FROM schedule_runs WHERE schedule_id = ? ORDER BY id DESC LIMIT ?", (schedule_id, limit))
        return [ScheduleRun.from_row(r) for r in rows]
