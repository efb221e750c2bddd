"""`sovhub schedule add|list|rm|pause|resume`: edit the schedules in SQLite, with or without a running hub.

The CLI writes the same table the hub reads (through the same checks); a running hub loads the
change within a few seconds, a stopped one at its next start.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from hub.cli.common import console, get_config, run_async
from hub.config import HubConfig
from hub.cron import render
from hub.cron.book import ScheduleBook
from hub.cron.parse import parse_assignments
from hub.cron.service import DEFAULT_POLL_S, LEASE_KEY
from hub.cron.triggers import parse_duration, parse_trigger
from hub.registry import SkillRegistry
from hub.store import Store

app = typer.Typer(no_args_is_help=True, help="Skills run on a timetable (cron, interval, one-shot).")
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="config YAML (or $SOVHUB_CONFIG)")]


def load_registry(config: HubConfig) -> SkillRegistry:
    """The hub's one skill registry, as `sovhub run` would build it."""
    from hub.plugins import load_registry as build

    return build(config)


async def _with_book(config: HubConfig, action):
    store = await Store.open(config.storage.db_path)
    try:
        book = ScheduleBook(store, load_registry(config))
        return await action(book)
    finally:
        await store.close()


async def _hub_note(book: ScheduleBook) -> str:
    rows = await book.db.execute_fetchall("SELECT updated_at FROM kv WHERE key = ?", (LEASE_KEY,))
    if rows and rows[0][0] > time.time() - max(10.0, 3 * DEFAULT_POLL_S):
        return f"the running hub loads it within {DEFAULT_POLL_S:g} s"
    return "it takes effect when the hub runs (sovhub run)"


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="a unique name, e.g. nightly")],
    trigger: Annotated[str, typer.Argument(help='"0 6 * * *" (crontab), "every 15m" or "at 2026-12-24T18:00"')],
    skill: Annotated[str, typer.Argument(help="the skill to run (see `sovhub skills`)")],
    args: Annotated[list[str] | None, typer.Argument(help="the skill's arguments as key=value")] = None,
    tz: Annotated[str, typer.Option("--tz", help="IANA time zone of the timetable")] = "UTC",
    room: Annotated[str | None, typer.Option("--room", help="Matrix room for the results (!id:server)")] = None,
    grace: Annotated[str | None, typer.Option("--grace", help="skip a slot missed by more than this (e.g. 2h)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Add a schedule; it is checked (timetable, skill, arguments) before anything is written."""
    cfg = get_config(config)

    async def action(book: ScheduleBook) -> None:
        spec = parse_trigger(trigger, tz)
        grace_s = parse_duration(grace) if grace is not None else None
        schedule = await book.add(name=name, trigger=spec, skill=skill, params=parse_assignments(args or []),
                                  room=room, grace_s=grace_s, created_by="cli")
        console.print(f"added {schedule.name}: {schedule.skill} {spec.describe()}; next run "
                      f"{render.local_time(schedule.next_run_at, schedule.timezone)}; {await _hub_note(book)}",
                      highlight=False, markup=False)

    run_async(_with_book(cfg, action))


@app.command("list")
def list_schedules(
    runs: Annotated[int, typer.Option("--runs", min=0, help="recent runs to show per schedule")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    config: ConfigOpt = None,
) -> None:
    """Schedules with their state, next run and recent runs (status, duration, error)."""
    cfg = get_config(config)

    async def action(book: ScheduleBook) -> list[tuple[Any, list[Any]]]:
        return [(s, await book.runs(s.id, runs) if runs else []) for s in await book.all()]

    items = run_async(_with_book(cfg, action))
    if as_json:
        print(json.dumps([_as_json(s, r) for s, r in items], indent=2))
        return
    if not items:
        console.print('no schedules (add one: sovhub schedule add nightly "0 6 * * *" <skill> key=value)',
                      markup=False)
        return
    for schedule, history in items:
        console.print(render.schedule_markdown(schedule, history, markdown=False), highlight=False, markup=False)


def _as_json(schedule, history) -> dict[str, Any]:
    return {
        "name": schedule.name, "state": schedule.state, "skill": schedule.skill, "params": schedule.params,
        "trigger": json.loads(schedule.trigger.to_json()), "timezone": schedule.timezone, "room": schedule.room,
        "source": schedule.source, "next_run_at": schedule.next_run_at, "last_run_at": schedule.last_run_at,
        "last_status": schedule.last_status,
        "runs": [{"status": r.status, "started_at": r.started_at, "duration_s": r.duration_s, "error": r.error,
                  "job_id": r.job_id} for r in history],
    }


def _simple(verb: str):
    def command(name: Annotated[str, typer.Argument(help="the schedule's name")], config: ConfigOpt = None) -> None:
        cfg = get_config(config)

        async def action(book: ScheduleBook) -> None:
            if verb == "rm":
                await book.remove(name)
                done = f"removed {name}"
            else:
                schedule = await book.set_enabled(name, verb == "resume")
                done = f"paused {name}" if verb == "pause" else (
                    f"resumed {name}; next run {render.local_time(schedule.next_run_at, schedule.timezone)}")
            console.print(f"{done}; {await _hub_note(book)}", highlight=False, markup=False)

        run_async(_with_book(cfg, action))

    command.__doc__ = {"rm": "Remove a schedule and its run history.",
                       "pause": "Stop a schedule from firing (kept, with its history).",
                       "resume": "Let a paused schedule fire again, from its next slot."}[verb]
    return command


app.command("rm")(_simple("rm"))
app.command("pause")(_simple("pause"))
app.command("resume")(_simple("resume"))
