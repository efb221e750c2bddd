"""`sovhub matrix run --config FILE`: the hub with only its Matrix bridge (what a bot host runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="The Matrix bot.")


@app.command("run")
def run(config: Annotated[Path | None, typer.Option("--config", "-c", help="config YAML")] = None) -> None:
    """Run the hub with the Matrix bridge only, until SIGTERM/Ctrl-C."""
    from bridges.matrix.__main__ import main

    main(["--config", str(config)] if config else [])
