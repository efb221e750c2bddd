"""A hub with the status bridge on an ephemeral port, for the status page and metrics tests."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from hub.config import load_config
from hub.core import Hub
from hub.runtime import start_bridges, stop_bridges
from tests.helpers_skills import test_registry


@contextlib.asynccontextmanager
async def status_hub(data_dir: Path, *, token: str | None = None,
                     residents: dict[str, Any] | None = None) -> AsyncIterator[tuple[Hub, str]]:
    """Start a hub (test skills, real SQLite) with only the status bridge; yields (hub, page URL)."""
    overrides: dict[str, Any] = {
        "storage": {"data_dir": str(data_dir)},
        "status": {"host": "127.0.0.1", "port": 0, "token": token},
        "matrix": {"enabled": False},
    }
    if residents:
        overrides["residents"] = residents
    config = load_config(None, environ={}, overrides=overrides)
    hub = await Hub.start(config, skills=test_registry(), components=())
    started = []
    try:
        started = await start_bridges(hub, only={"status"})
        assert [name for name, _ in started] == ["status"]
        yield hub, hub.extras["status_page"].url
    finally:
        await stop_bridges(hub, started)
        await hub.stop()


async def add_cost(hub: Hub, usd: float, at: float | None = None) -> None:
    """A cloud cost row as the chat service writes it (the costs table is the spend's record)."""
    await hub.store.db.execute(
        "INSERT INTO costs(at, provider, model, input_tokens, output_tokens, usd, origin) VALUES (?,?,?,?,?,?,?)",
        (at or time.time(), "anthropic", "claude-sonnet-4-5", 1000, 200, usd, "cli"))
    await hub.store.db.commit()
