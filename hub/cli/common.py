"""Shared CLI plumbing: config resolution, one-line user errors, key=value arguments."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

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
    config = load_config(config_path(path))
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
    """`key=value` pairs; values are JSON when they parse as JSON, else strings."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise HubError(f"expected key=value, got {item!r}")
        key, _, raw = item.partition("=")
        key = key.strip()
        if not key:
            raise HubError(f"missing key in {item!r}")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out
