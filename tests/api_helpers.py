"""Shared pieces of the gateway tests: the hub with the `api` bridge in front of the stand-ins."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from hub.serve import start_bridges, stop_bridges
from tests.chat_helpers import chat_bed

WRITER = "w" * 8 + "-writer-token-1"
PRIVATE = "p" * 8 + "-private-token-1"
READER = "r" * 8 + "-reader-token-11"
TOKENS = [{"name": "aider", "token": WRITER, "role": "write"},
          {"name": "vibe", "token": PRIVATE, "role": "write", "policy": "local-only"},
          {"name": "dashboard", "token": READER, "role": "read"}]


@contextlib.asynccontextmanager
async def api_bed(tmp_path, *, status: bool = False, **config: Any) -> AsyncIterator[tuple[Any, str]]:
    """(the chat bed, the gateway's base URL): stand-ins, a hub with chat, the gateway on a free port
    (and the status page, also on a free port, with `status=True`)."""
    api = {"port": 0, "tokens": TOKENS, **config.pop("api", {})}
    async with chat_bed(tmp_path, api=api, status={"port": 0}, **config) as bed:
        started = await start_bridges(bed.hub, only={"api", "status"} if status else {"api"})
        try:
            yield bed, bed.hub.extras["api"].url
        finally:
            await stop_bridges(bed.hub, started)


async def cost_rows(hub) -> list[dict]:
    rows = await hub.store.db.execute_fetchall(
        "SELECT provider, model, input_tokens, output_tokens, usd, origin, client FROM costs ORDER BY id")
    return [dict(zip(("provider", "model", "input_tokens", "output_tokens", "usd", "origin", "client"), r,
                     strict=True)) for r in rows]
