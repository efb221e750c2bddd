"""`sovhub skill run`: one skill through hub.run_skill, with a progress bar for long skills."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.prompt import Confirm

from hub.cli.common import console
from hub.config import HubConfig
from hub.context import Context
from hub.core import COMPONENTS, Hub
from hub.errors import HubError
from hub.registry import Permission

# A one-off run does not fire schedules: a slot caught up here would die with this short process.
ONE_OFF_COMPONENTS = tuple(c for c in COMPONENTS if c != "hub.cron.component")


async def run_one(config: HubConfig, name: str, params: dict[str, Any], yes: bool) -> None:
    hub = await Hub.start(config, components=ONE_OFF_COMPONENTS)
    try:
        skill = hub.skills.get(name)

        async def confirm(skill_, params_, ctx) -> bool:
            if yes:
                return True
            return Confirm.ask(f"run destructive skill [bold]{skill_.name}[/bold] with {params_.model_dump()}?")

        handle = await hub.start_skill(name, params, Context.new("cli"), grant=Permission.destructive,
                                       approver=confirm)
        if skill.long_running:
            with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[msg]}"),
                          TimeElapsedColumn(), console=console) as bar:
                task = bar.add_task(name, total=None, msg="queued")
                handle.on_progress(lambda p: bar.update(task, completed=p.done, total=p.total, msg=p.message))
                result = await handle.wait()
        else:
            result = await handle.wait()
        console.print_json(result.model_dump_json())
        console.print(f"[dim]job {handle.id}[/dim]")
    except HubError:
        raise
    finally:
        await hub.stop()
