"""`sovhub mcp`: serve the hub's tools over stdio (what Vibe spawns); `http`, `tools`, `token` beside it.

In stdio mode stdout carries only MCP messages: every log line goes to stderr.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from hub.cli.common import fail, get_config, run_async
from hub.config import HubConfig
from hub.registry import SkillRegistry

app = typer.Typer(add_completion=False, help="The MCP server. With no command: serve over stdio (for Vibe etc.).")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="config YAML (or $SOVHUB_CONFIG)")]
RegistryOpt = Annotated[str | None, typer.Option(
    "--registry", hidden=True, help="module:function returning a SkillRegistry (embedding, tests)")]


def load_registry(spec: str | None) -> SkillRegistry | None:
    if not spec:
        return None
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr or "registry")
    except (ImportError, AttributeError) as exc:
        fail(f"--registry {spec}: {exc}")
    registry = factory() if callable(factory) else factory
    if not isinstance(registry, SkillRegistry):
        fail(f"--registry {spec} did not give a SkillRegistry")
    return registry


ConnectOpt = Annotated[str | None, typer.Option(
    "--connect", help="relay stdio to the running hub's HTTP MCP server at this URL instead of starting a hub")]
TokenEnvOpt = Annotated[str, typer.Option("--token-env", help="environment variable holding the bearer token")]


@app.callback(invoke_without_command=True)
def main(ctx: typer.Context, config: ConfigOpt = None, registry: RegistryOpt = None, connect: ConnectOpt = None,
         token_env: TokenEnvOpt = "SOVHUB_MCP_TOKEN") -> None:
    """Serve every skill as an MCP tool over stdio (stdout = protocol, stderr = logs)."""
    ctx.obj = {"config": config, "registry": registry}
    if ctx.invoked_subcommand is not None:
        return
    if connect:
        from hub.logs import setup_logging

        token = os.environ.get(token_env)
        setup_logging("WARNING", [token] if token else [])
        run_async(relay_stdio(connect, token, token_env))
        return
    cfg = get_config(config)  # logging goes to stderr (or the configured file), never stdout
    run_async(serve_stdio(cfg, load_registry(registry)))


async def relay_stdio(url: str, token: str | None, token_env: str = "SOVHUB_MCP_TOKEN") -> None:
    """stdio in front of a running hub: one hub owns the GPU, however many clients spawn `sovhub mcp`."""
    from fastmcp.server import create_proxy
    from fastmcp.server.providers.proxy import ProxyClient

    await check_reachable(url, token, token_env)
    # ProxyClient (not a plain Client) forwards the hub's progress notifications to the stdio client.
    proxy = create_proxy(ProxyClient(url, auth=token), name="sovhub")
    proxy.provider_error_strategy = "raise"  # an unreachable hub is an error, not an empty tool list
    await proxy.run_stdio_async(show_banner=False)


async def check_reachable(url: str, token: str | None, token_env: str = "SOVHUB_MCP_TOKEN") -> None:
    """Say why the relay cannot work before a client sees only "Connection closed"."""
    import httpx

    headers = {"Accept": "text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(url, headers=headers)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the hub's MCP server at {url}: {exc or type(exc).__name__} (is `sovhub run` running?)")
    if response.status_code == 401:
        fail(f"the hub at {url} answered 401 Unauthorized: " + (
            f"the token in ${token_env} is not one of its mcp.tokens" if token else
            f"no token given; put one of the hub's mcp.tokens in ${token_env} (`sovhub mcp token` makes one)"))
    if response.status_code in (403, 421):
        fail(f"the hub at {url} refused this client ({response.status_code}): add the host to mcp.allowed_hosts")
    if response.status_code == 404:
        fail(f"the hub answers at {url} but not with MCP (404): check mcp.path")


async def serve_stdio(config: HubConfig, registry: SkillRegistry | None) -> None:
    """Answer the client at once; the hub starts beside the transport and tool calls wait for it.

    The mcp SDK diverts fd 1 to stderr while it serves, so a stray print cannot corrupt the stream.
    The server ends when the client closes stdin (EOF), and the hub stops with it.
    """
    from bridges.mcp.access import Caller
    from bridges.mcp.server import build_server
    from bridges.mcp.starting import StartingHub

    if registry is None:
        from hub.plugins import load_registry, log_problems

        registry = load_registry(config)
        log_problems(registry)
    starting = StartingHub(config, registry)
    stdio = Caller("stdio", config.mcp.stdio_role, via="stdio", approval=config.mcp.stdio_approval,
                   policy=config.mcp.stdio_policy)
    mcp = build_server(starting, default_caller=stdio, with_auth=False)
    await warn_if_hub_running(config)  # a loopback connect: answered or refused at once
    starting.begin()
    try:
        await mcp.run_stdio_async(show_banner=False)
    finally:
        await starting.stop()


async def warn_if_hub_running(config: HubConfig) -> None:
    """Two hubs on one data directory would both drive the GPU: say so when `sovhub run` is up."""
    mcp = config.mcp
    if not mcp.enabled:
        return
    host = "127.0.0.1" if mcp.host in ("0.0.0.0", "::") else mcp.host
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host.strip("[]"), mcp.port), 0.3)
    except (OSError, TimeoutError):
        return
    writer.close()
    url = f"http://{host}:{mcp.port}{mcp.path}"
    logging.getLogger(__name__).warning(
        "a hub already serves MCP at %s; this starts a second hub on the same data directory. "
        "Prefer `sovhub mcp --connect %s` (token in $SOVHUB_MCP_TOKEN).", url, url)


@app.command("http")
def http(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="override mcp.host")] = None,
    port: Annotated[int | None, typer.Option(help="override mcp.port (0 = any free port)")] = None,
) -> None:
    """Serve only the MCP bridge over streamable HTTP (no Matrix, no status page)."""
    cfg = get_config(ctx.obj["config"])
    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if overrides:
        cfg = cfg.model_copy(update={"mcp": cfg.mcp.model_copy(update=overrides)})
    run_async(serve_http(cfg, load_registry(ctx.obj["registry"])))


async def serve_http(config: HubConfig, registry: SkillRegistry | None) -> None:
    import signal

    from bridges.mcp import component
    from bridges.mcp.access import check_bind
    from hub.core import COMPONENTS, Hub
    from hub.heap import settle_after_startup

    check_bind(config.mcp)
    config = config.model_copy(update={"mcp": config.mcp.model_copy(update={"enabled": True})})  # asked for
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    hub = await Hub.start(config, skills=registry, components=(*COMPONENTS, component))  # the hub's, then MCP
    try:
        settle_after_startup()  # start-up's objects leave the collector's full passes (hub.heap)
        print(f"MCP server on {hub.extras[component.MCP].url}", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        await hub.stop()


@app.command("tools")
def tools(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The tools an MCP client sees (from the skill registry), with their permission hints."""
    from fastmcp import Client

    from bridges.mcp.access import Caller
    from bridges.mcp.server import build_server
    from hub.core import Hub

    cfg = get_config(ctx.obj["config"])

    async def listing() -> list[dict[str, Any]]:
        hub = await Hub.start(cfg, skills=load_registry(ctx.obj["registry"]), components=(), resume_jobs=False)
        try:
            server = build_server(hub, default_caller=Caller("cli", "read", via="cli"), with_auth=False)
            async with Client(server) as client:
                listed = await client.list_tools()
        finally:
            await hub.stop()
        return [{"name": t.name, "description": t.description,
                 "annotations": t.annotations.model_dump(by_alias=True, exclude_none=True) if t.annotations else {},
                 "input_schema": t.input_schema} for t in listed]

    listed = run_async(listing())
    if as_json:
        print(json.dumps(listed, indent=2))
        return
    for t in listed:
        hints = ", ".join(k.removesuffix("Hint") for k, v in t["annotations"].items() if v is True)
        print(f"{t['name']:<20} [{hints}] {(t['description'] or '').splitlines()[0]}")


@app.command("token")
def token(name: Annotated[str, typer.Argument(help="who will hold it")] = "vibe",
          role: Annotated[str, typer.Option(help="read, write or owner")] = "write") -> None:
    """Print a new random bearer token and the config lines that enable it."""
    if role not in ("read", "write", "owner"):
        fail(f"unknown role {role!r} (read, write or owner)")
    value = secrets.token_urlsafe(32)
    print(value)
    print(f"# in the config (or keep the value in a file and use token_file:):\nmcp:\n  tokens:\n"
          f"    - name: {name}\n      role: {role}\n      token_env: SOVHUB_MCP_TOKEN_{name.upper()}",
          file=sys.stderr)
