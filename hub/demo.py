"""`sovhub demo`: the hub on embedded defaults with a terminal chat (filled in by the demo work)."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from hub.config import load_config
from hub.context import Context
from hub.core import Hub
from hub.errors import HubError


async def run_demo(data_dir: Path | None = None, script: Path | None = None) -> None:
    console = Console()
    overrides = {"storage": {"data_dir": str(data_dir)}} if data_dir else None
    config = load_config(None, overrides=overrides)
    hub = await Hub.start(config)
    try:
        console.print(f"[bold]sovhub demo[/bold] — {len(hub.skills)} skills, state in {config.storage.root}")
        lines = script.read_text().splitlines() if script else None
        while True:
            if lines is not None:
                if not lines:
                    break
                line = lines.pop(0)
            else:
                try:
                    line = console.input("[bold cyan]you>[/bold cyan] ")
                except EOFError:
                    break
            line = line.strip()
            if line in ("/quit", "/exit"):
                break
            if line == "/skills":
                for s in hub.skills:
                    console.print(f"  {s.name}: {s.description}")
            elif line == "/status":
                console.print(await hub.status())
            elif line.startswith("/run "):
                name, *rest = line[5:].split()
                try:
                    params = dict(a.split("=", 1) for a in rest)
                    console.print(await hub.run_skill(name, params, Context.new("cli")))
                except (HubError, ValueError) as exc:
                    console.print(f"[red]{exc}[/red]")
            elif line:
                console.print("[dim]chat arrives with the chat component[/dim]")
    finally:
        await hub.stop()
        sys.stdout.flush()
