"""`sovhub gpu [load|unload|pin|unpin|logs]`: the operator's GPU controls from a shell.

Showing reads the snapshot the running hub keeps in SQLite (`gpu.snapshot`). Changes are requests
to the running hub's scheduler through its status page (`POST /api/gpu/{op}` with `status.token`),
so the CLI, `/gpu` in chat, MCP and the page's buttons all get the same answer and the same
refusals; nothing here writes scheduler state.
"""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Annotated

import httpx
import typer

from hub.cli.common import console, fail, get_state_config, run_async
from hub.config import HubConfig
from hub.errors import HubError
from hub.gpu import surfaces as gpu_surfaces
from hub.store import Store

app = typer.Typer(invoke_without_command=True,
                  help="GPU residents: show, load, unload, pin NAME --for 30m, unpin, logs NAME [-f].")
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="config YAML (or $SOVHUB_CONFIG)")]
URL_KEY = "status.url"


async def _kv(config: HubConfig, key: str):
    store = await Store.open(config.storage.db_path)
    try:
        return await store.kv_get(key, None)
    finally:
        await store.close()


async def _page(config: HubConfig) -> str:
    url = await _kv(config, URL_KEY)
    if not url:
        raise HubError("no running hub with a status page found (GPU controls go through it: "
                       "`sovhub run` with status.enabled)")
    return str(url).rstrip("/")


async def _request(config: HubConfig, op: str, fields: dict[str, str]) -> tuple[bool, str]:
    token = config.status.token.get_secret_value() if config.status.token else ""
    if not token:
        raise HubError("GPU changes need the status page's token: set status.token in the config")
    base = await _page(config)
    try:
        async with httpx.AsyncClient(timeout=30) as c:
            r = await c.post(f"{base}/api/gpu/{op}", params=fields, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise HubError(f"the hub's status page at {base} does not answer ({type(exc).__name__}): is the hub running?") \
            from exc
    if r.status_code in (401, 403):
        raise HubError(r.json().get("error", f"refused by the status page ({r.status_code})"))
    body = r.json()
    return bool(body.get("ok")), str(body.get("message") or body.get("error"))


def _say(ok: bool, message: str) -> None:
    if ok:
        console.print(f"[green]ok[/green] {message}", highlight=False)
    else:
        fail(f"refused: {message}")


@app.callback()
def show(ctx: typer.Context, config: ConfigOpt = None) -> None:
    """What is resident, pins, the queue and ETAs (from the running hub's snapshot)."""
    if ctx.invoked_subcommand is not None:
        return
    cfg = get_state_config(config)
    snap = run_async(_kv(cfg, "gpu.snapshot")) or {}
    console.print(gpu_surfaces.describe(snap), highlight=False, markup=False)


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


@app.command()
def load(name: str, config: ConfigOpt = None) -> None:
    """Ask the scheduler to load NAME now (it queues like a chat turn)."""
    _say(*run_async(_request(get_state_config(config), "load", {"name": name, "by": _who()})))


@app.command()
def unload(name: Annotated[str | None, typer.Argument()] = None, config: ConfigOpt = None) -> None:
    """Ask the scheduler to unload NAME (every loaded resident without a name)."""
    _say(*run_async(_request(get_state_config(config), "unload", {"name": name or "", "by": _who()})))


@app.command()
def pin(name: str, duration: Annotated[str, typer.Option("--for", help="e.g. 30m, 2h")] = "30m",
        config: ConfigOpt = None) -> None:
    """Hold NAME for a while (loads it if needed); the pin expires and shows who pinned."""
    gpu_surfaces.parse_for(duration)  # a bad duration is one clear line before anything is asked
    _say(*run_async(_request(get_state_config(config), "pin", {"name": name, "for": duration, "by": _who()})))


@app.command()
def unpin(name: str, config: ConfigOpt = None) -> None:
    """Remove the pin on NAME."""
    _say(*run_async(_request(get_state_config(config), "unpin", {"name": name, "by": _who()})))


async def _logs(config: HubConfig, name: str, lines: int, follow: bool) -> None:
    base = await _page(config)
    seen: list[str] = []
    async with httpx.AsyncClient(timeout=30) as c:
        while True:
            r = await c.get(f"{base}/api/gpu/logs/{name}", params={"lines": lines if not seen else 500})
            if r.status_code != 200:
                raise HubError(r.text.strip())
            now = r.text.splitlines()
            new = now
            if seen:  # print only what follows the last line already shown
                tail = seen[-1]
                idx = max((i for i, line in enumerate(now) if line == tail), default=-1)
                new = now[idx + 1:] if idx >= 0 else now
            for line in new:
                print(line, flush=True)
            seen = now or seen
            if not follow:
                return
            await asyncio.sleep(1.0)


@app.command()
def logs(name: str, follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
         lines: Annotated[int, typer.Option("--lines", "-n")] = 50, config: ConfigOpt = None) -> None:
    """The last lines of NAME's server output; -f follows it."""
    run_async(_logs(get_state_config(config), name, lines, follow))
