"""`sovhub demo`: the hub on a simulated GB10, with a terminal chat.

The imperative shell that wires the parts together: stand-ins as residents, the hub with its
components, the bridges (MCP, status page, Matrix when configured), and a read-eval-print loop
that sends slash commands through the one command table and everything else through the chat
service. Anything missing from the build is announced and skipped, never a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from hub.config import HubConfig, load_config
from hub.context import Context
from hub.core import Hub
from hub.demo.fleet import RESIDENTS, CloudStandIn, SimFleet
from hub.demo.seed import seed_blog, seed_notes
from hub.demo.terminal import LineReader, SwapWatcher, TerminalIO, TerminalSink
from hub.demo.writer import StandInWriter
from hub.serve import bridge_modules

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path("~/.local/share/sovhub-demo")
QUIT = ("/quit", "/exit", "/q")
DEFAULT_READY_WAIT_S = 30.0


@dataclass
class DemoOptions:
    data_dir: Path | None = None
    script: Path | None = None
    mcp_port: int = 8002
    status_port: int = 8003
    api_port: int = 8004
    load_seconds: float = 2.0
    auto_approve: bool = False


class Demo:
    def __init__(self, options: DemoOptions, console: Console | None = None) -> None:
        self.options = options
        self.console = console or Console(highlight=False)
        self.data_dir = (options.data_dir or DEFAULT_DATA_DIR).expanduser().resolve()
        self.fleet = SimFleet(self.data_dir, options.load_seconds)
        self.cloud: CloudStandIn | None = None
        self.search: Any = None  # the SearXNG stand-in behind web_search
        self.hub: Hub | None = None
        self.bridges: list[tuple[str, Any]] = []
        self.io = TerminalIO(self.console)
        self.watcher = SwapWatcher(self.console)
        self.reader = LineReader(self.console)
        self.writer: StandInWriter | None = None
        self.terminated = False
        self.context = Context.new("cli", user="demo")
        self.conversation: Any = None

    # -- start / stop ------------------------------------------------------------------------------
    async def _config(self) -> HubConfig:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        overrides: dict[str, Any] = {
            "storage": {"data_dir": str(self.data_dir)},
            "residents": self.fleet.residents_config(),
            "llm": {"local": {"base_url": self.fleet.url("sglang") + "/v1", "model": "mistral-small-4",
                              "resident": "sglang", "first_token_timeout_s": 60}},
            "mcp": {"host": "127.0.0.1", "port": self.options.mcp_port},
            "status": {"host": "127.0.0.1", "port": self.options.status_port},
            "api": {"host": "127.0.0.1", "port": self.options.api_port},
            "skills": {"content": {"blog_dir": str(seed_blog(self.data_dir / "blog")), "tts_engine": "vllm-omni",
                                   "notes_dir": str(self.data_dir / "notes"), "git_push": False}},
        }
        from hub.sim import searxng
        from hub.sim.serve import AppServer

        self.search = AppServer(searxng.create_app())
        overrides["skills"]["web"] = {"searxng_url": await self.search.start()}
        if os.environ.get("ANTHROPIC_API_KEY"):
            overrides["llm"]["cloud"] = {"enabled": True, "api_key": os.environ["ANTHROPIC_API_KEY"]}
        else:
            self.cloud = CloudStandIn()
            url = await self.cloud.start()
            overrides["llm"]["cloud"] = {"enabled": True, "base_url": url, "api_key": CloudStandIn.API_KEY}
        return load_config(None, overrides=overrides)

    async def start(self) -> None:
        config = await self._config()
        await self.fleet.start_unmanaged()
        self.hub = await Hub.start(config)
        self.watcher.snapshot = self.hub.gpu.snapshot
        default_up = asyncio.Event()
        self.hub.bus.listen("gpu_ready", lambda e: default_up.set() if e.data.get("resident") == "sglang" else None)
        self.hub.bus.listen("gpu_start_failed", lambda e: default_up.set())
        self.hub.bus.listen("*", self.watcher.on_event)
        if self.fleet.managed:
            self.writer = StandInWriter(config.llm.local.resident, self.fleet.url("sglang"))
            self.hub.bus.listen("gpu_started", self.writer.on_gpu_started)
        await self._start_bridges()
        self.conversation = self._conversation_key()
        self._banner(config)
        await self._wait_for_default(default_up)

    async def _wait_for_default(self, default_up: asyncio.Event) -> None:
        """The box boots with its default model: show it loading, then start the chat on it."""
        assert self.hub is not None
        snap = self.hub.gpu.snapshot()
        if not self.fleet.managed or (snap.resident == "sglang" and snap.state in ("ready", "busy")):
            return
        eta = (snap.residents.get("sglang") or {}).get("eta_s")
        self.console.print("[bold magenta]  ⇄ GPU[/bold magenta] loading the default model [bold]sglang[/bold]"
                           + (f", ETA {eta:.1f} s" if eta else "") + " …", highlight=False)
        try:
            await asyncio.wait_for(default_up.wait(), DEFAULT_READY_WAIT_S)
        except TimeoutError:
            self.console.print("[yellow]  the default model is still loading; chat goes to the cloud meanwhile"
                               "[/yellow]")

    async def _start_bridges(self) -> None:
        assert self.hub is not None
        for name, module in bridge_modules(self.hub.config):
            try:
                await module.setup(self.hub)
                self.bridges.append((name, module))
            except Exception as exc:
                self.console.print(f"[yellow]⚠ the {name} bridge is not available: {exc}[/yellow]")

    async def stop(self) -> None:
        self.watcher.muted = True
        if self.hub is not None:
            for name, module in reversed(self.bridges):
                try:
                    await asyncio.wait_for(module.teardown(self.hub), 10)
                except Exception as exc:
                    log.warning("bridge %s did not stop cleanly: %s", name, exc)
            self.bridges.clear()
            scheduler = self.hub.extras.get("gpu_scheduler")
            await self.hub.stop()
            await self._stop_stand_ins(scheduler)
            self.hub = None
        await self.fleet.stop()
        if self.cloud is not None:
            await self.cloud.stop()
            self.cloud = None
        if self.search is not None:
            await self.search.stop()
            self.search = None

    async def _stop_stand_ins(self, scheduler: Any) -> None:
        """A stopped scheduler leaves residents running (a restarted hub adopts them); the demo's
        stand-ins end with the demo. The scheduler's own drivers hold the child processes."""
        from hub.gpu.drivers import ProcessDriver

        for name, driver in (getattr(scheduler, "drivers", None) or {}).items():
            if isinstance(driver, ProcessDriver):
                try:
                    await driver.stop(5)
                except Exception as exc:
                    log.warning("stand-in %s did not stop: %s", name, exc)

    def _conversation_key(self) -> Any:
        from hub.chat.api import ConversationKey

        return ConversationKey("cli", "demo", None)

    # -- what the user sees first ------------------------------------------------------------------
    def _banner(self, config: HubConfig) -> None:
        hub = self.hub
        assert hub is not None
        c = self.console
        c.rule("[bold]sovhub demo[/bold] — a simulated DGX Spark (GB10)")
        mode = ("swaps by the resident-model scheduler (stand-in processes, shortened start times)"
                if self.fleet.managed and type(hub.gpu).__name__ != "DirectArbiter"
                else "[yellow]no resident scheduler in this build: every stand-in runs at once, no swaps[/yellow]")
        c.print(f"GPU pool 128 GB, one model at a time: {mode}")
        for name, (_, _, memory, _, what) in RESIDENTS.items():
            star = " (default)" if name == "sglang" else ""
            voice = " (it speaks with espeak-ng)" if name == "vllm-omni" else ""
            c.print(f"  • [bold]{name}[/bold]{star}: {what} stand-in{voice}, {memory:.0f} GB, {self.fleet.url(name)}")
        if self.cloud is not None:
            c.print("cloud: [bold]the Anthropic stand-in[/bold] (set ANTHROPIC_API_KEY to use real Claude)")
        else:
            c.print(f"cloud: [bold]real Claude[/bold] ({config.llm.cloud.model}, from ANTHROPIC_API_KEY)")
        names = {n for n, _ in self.bridges}
        if "mcp" in names:
            mcp = hub.extras.get("mcp")
            c.print(f"MCP server: {getattr(mcp, 'url', None) or f'http://127.0.0.1:{config.mcp.port}{config.mcp.path}'}")
        else:
            c.print("[yellow]MCP server: not available[/yellow]")
        if "status" in names:
            c.print(f"status page: {hub.extras['status_page'].url}/  (metrics: /metrics)")
        else:
            c.print("[yellow]status page: not available[/yellow]")
        if "matrix" in names:
            c.print(f"Matrix: the bot {config.matrix.user_id} is online on {config.matrix.homeserver}")
        missing = [tool for tool in ("espeak-ng", "ffmpeg") if shutil.which(tool) is None]
        if missing:
            c.print(f"[yellow]/podcast is not available: {' and '.join(missing)} not installed "
                    f"(apt-get install {' '.join(missing)})[/yellow]")
        c.print(f"state: {config.storage.db_path}")
        c.print(f"{len(hub.skills)} skills; chat: "
                + ("ready" if hub.chat is not None else "[yellow]not available in this build[/yellow]"))
        if self.cloud is not None:
            c.print("[dim]The stand-in models echo what you say; a message with "
                    + escape('[[call hero_image {"prompt": "a fox"}]]') + " makes them call a tool.[/dim]",
                    soft_wrap=True)
        notes = seed_notes(self.data_dir)
        c.print("[dim]Type to chat (\"!claude ...\" asks the cloud). Try:[/dim]")
        for hint in ("/image a lighthouse at dawn", "/podcast welcome", f"/publish --draft {notes}",
                     "/search EAGLE speculative decoding", "/diagnose", "/status", "/help", "/quit"):
            c.print(f"[dim]  {hint}[/dim]", highlight=False, soft_wrap=True)
        c.rule()

    # -- the loop ----------------------------------------------------------------------------------
    async def handle(self, line: str) -> bool:
        """One line from the user; False when the demo should end."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        if line in QUIT:
            return False
        from hub.commands import CommandEnv, dispatch, is_command

        if line.startswith("/"):
            if is_command(line):
                env = CommandEnv(hub=self.hub, context=self.context.child(), io=self.io,
                                 conversation=self.conversation, role="owner", approver=self._approve,
                                 run_turn=self._turn, status_extra=self._status_extra)
                await dispatch(env, line)
                return True
        await self._turn(line, None)
        return True

    async def _turn(self, text: str, override: str | None) -> Any:
        assert self.hub is not None
        if self.hub.chat is None:
            self.console.print("[yellow]chat is not available in this build (no chat service)[/yellow]")
            return None
        from hub.chat.api import TurnRequest

        sink = TerminalSink(self.console)
        request = TurnRequest(text=text, context=self.context.child(), conversation=self.conversation,
                              override=override, approver=self._approve)
        await sink.start()
        try:
            outcome = await self.hub.chat.turn(request, sink)
        except Exception as exc:
            await sink.fail(f"{type(exc).__name__}: {exc}")
            return None
        if not sink.finished:
            await sink.finish(getattr(outcome, "text", "") or sink.text)
        self._outcome_line(outcome)
        return outcome

    def _outcome_line(self, outcome: Any) -> None:
        if outcome is None:
            return
        route = getattr(outcome, "route", "?")
        where = {"local": "local · Mistral Small 4 (stand-in)",
                 "cloud": "cloud · " + ("Claude" if self.cloud is None else "Anthropic stand-in")}.get(route, route)
        cost = getattr(outcome, "cost_usd", 0.0) or 0.0
        tokens = (getattr(outcome, "input_tokens", 0) or 0, getattr(outcome, "output_tokens", 0) or 0)
        self.console.print(f"[dim]  ↳ {where} — {getattr(outcome, 'reason', '')}; "
                           f"{tokens[0]}→{tokens[1]} tokens, ${cost:.4f}[/dim]")

    async def _approve(self, skill, params, ctx) -> bool:
        if self.options.auto_approve or self.options.script is not None:
            self.console.print(f"[yellow]  ? {skill.name} needs approval: approved (demo script)[/yellow]")
            ok = True
        else:
            answer = await self.reader.readline(f"[yellow]  ? run {skill.name}? [y/N] [/yellow]")
            ok = (answer or "").strip().lower() in ("y", "yes")
        if ok and self.writer is not None:
            self.writer.approved(skill.name, params, ctx)
        return ok

    def _status_extra(self) -> dict[str, Any]:
        return {"demo": {"swaps_seen": self.watcher.swaps,
                         "cloud": "stand-in" if self.cloud else "claude"}}

    async def lines(self):
        """The script's lines, or the terminal's until EOF."""
        if self.options.script is not None:
            for line in self.options.script.read_text().splitlines():
                self.console.print(f"[bold cyan]you>[/bold cyan] {escape(line)}")
                yield line
            return
        while True:
            line = await self.reader.readline("[bold cyan]you>[/bold cyan] ")
            if line is None:
                return
            yield line

    async def run(self) -> None:
        try:
            await self.start()
            async for line in self.lines():
                if not await self.handle(line):
                    break
        finally:
            self.console.print("[dim]stopping…[/dim]")
            await self.stop()
            self.console.print("bye")


async def run_demo(data_dir: Path | None = None, script: Path | None = None, mcp_port: int = 8002,
                   status_port: int = 8003, api_port: int = 8004, load_seconds: float = 2.0,
                   yes: bool = False) -> None:
    options = DemoOptions(data_dir=data_dir, script=script, mcp_port=mcp_port, status_port=status_port,
                          api_port=api_port,
                          load_seconds=load_seconds, auto_approve=yes)
    demo = Demo(options)
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def terminate() -> None:  # SIGTERM / SIGHUP: stop like /quit (stand-ins included)
        demo.terminated = True
        if task is not None:
            task.cancel()

    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, terminate)
    try:
        await demo.run()
    except asyncio.CancelledError:
        if not demo.terminated:
            raise
