"""The `sovhub` command's entry point: a plugin's command group starts without the rest of the CLI.

An MCP client spawns `sovhub mcp` and waits for `initialize` (Vibe: 10 s by default); loading every
command group first (schedules with APScheduler, the Matrix CLI, rich tables) only delays that. When
the first argument names a group from the `sovhub.cli` entry points, only that group is loaded;
anything else (`sovhub run`, `sovhub --help`, `sovhub --debug mcp`) goes through the full CLI.
"""

from __future__ import annotations

import sys
from typing import Any


def plugin_group(name: str) -> Any | None:
    from importlib.metadata import entry_points

    for ep in entry_points(group="sovhub.cli"):
        if ep.name == name:
            return ep.load()
    return None


def main() -> None:
    from hub.heap import while_starting

    while_starting()  # the collector waits until start-up's objects are in place (hub.heap)
    args = sys.argv[1:]
    group = plugin_group(args[0]) if args and not args[0].startswith("-") else None
    import typer

    if not isinstance(group, typer.Typer):  # a built-in command, or a plugin command that is a function
        from hub.cli.main import main as full_cli

        full_cli()
        return
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.add_typer(group, name=args[0])
    app(prog_name="sovhub")
