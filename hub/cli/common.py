"""Shared CLI plumbing: config resolution, one-line user errors, key=value arguments."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from hub import kvargs as kv
from hub.config import HubConfig, load_config
from hub.errors import HubError
from hub.logs import collect_secrets, setup_logging

console = Console()
err_console = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

STATE = {"debug": False}


def config_path(path: Path | None) -> Path | None:
    if path is not None:
        return path
    env = os.environ.get("SOVHUB_CONFIG")
    return Path(env) if env else None


def get_config(path: Path | None) -> HubConfig:
    """The config, or one clear line and exit 1 when it is invalid (`--debug` shows the traceback)."""
    try:
        config = load_config(config_path(path))
    except HubError as exc:
        fail(str(exc))
    setup_logging(config.logging.level, collect_secrets(config),
                  str(config.logging.file) if config.logging.file else None, debug=STATE["debug"])
    return config


def get_state_config(path: Path | None) -> HubConfig:
    """The config for commands that only read the hub's state (`status`, `jobs`): secrets this shell
    does not have (a chat password's unset variable, an unreadable token file) are not needed to
    read SQLite, so they are not required. An invalid config is still one clear line."""
    from hub.config.loader import lenient_config

    config = lenient_config(config_path(path))
    if config is None:
        return get_config(path)  # says what is wrong, line by line
    setup_logging(config.logging.level, collect_secrets(config),
                  str(config.logging.file) if config.logging.file else None, debug=STATE["debug"])
    return config


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; a HubError becomes one clear line and exit 1 (`--debug` shows the traceback)."""
    try:
        return asyncio.run(coro)
    except HubError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)


def fail(message: str, code: int = 1):
    if STATE["debug"]:
        raise
    err_console.print(f"[red]error:[/red] {message}", highlight=False)
    raise SystemExit(code)


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """`key=value` pairs, by the rules chat and schedules use (`hub.kvargs`): JSON values when they
    parse as JSON, else strings; the shell has already applied its quoting."""
    return kv.parse_assignments(items)

