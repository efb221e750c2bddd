"""The demo's terminal front end: a ReplySink for chat turns, a CommandIO for slash commands, and
a watcher that prints GPU swaps and job progress as they happen (from the hub's event bus)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markdown import Markdown

from hub.events import Event


class TerminalSink:
    """Streams a chat answer onto the terminal as it arrives (the ReplySink of the chat API)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.text = ""
        self.started = False
        self.finished = False

    def _begin(self) -> None:
        if not self.started:
            self.console.print("[bold green]sovhub>[/bold green] ", end="")
            self.started = True

    async def start(self) -> None:
        return None

    async def delta(self, text: str) -> None:
        self._begin()
        self.text += text
        self.console.print(text, end="", markup=False, highlight=False, soft_wrap=True)

    async def notice(self, text: str) -> None:
        if self.started and self.text:
            self.console.print()
        self.console.print(f"[dim]  · {text}[/dim]", highlight=False)

    async def finish(self, text: str) -> None:
        if self.finished:
            return
        self.finished = True
        if not self.text and text:
            self._begin()
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self.console.print()
        self.text = text or self.text

    async def fail(self, message: str) -> None:
        if self.text:
            self.console.print()
        self.finished = True
        self.console.print(f"[bold red]sovhub> ⚠ {message}[/bold red]", highlight=False)


def _keep_angle_brackets(markdown: str) -> str:
    """`usage: /cancel <job>` must show `<job>`: the terminal's Markdown would drop it as HTML.
    Outside code spans, escape `<`; inside backticks it is shown as it is anyway."""
    parts = markdown.split("`")
    return "`".join(part.replace("<", "\\<") if i % 2 == 0 else part for i, part in enumerate(parts))


class TerminalIO:
    """Where slash commands answer (the CommandIO of `hub.commands`)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.files: list[tuple[str, Path]] = []
        self._last_progress = ""

    async def reply(self, text: str) -> None:
        self.console.print(Markdown(_keep_angle_brackets(text)))

    async def job_state(self, state: str) -> None:
        mark = {"started": "⏳ started", "succeeded": "✅ done", "failed": "❌ failed"}.get(state, state)
        self.console.print(f"[dim]  {mark}[/dim]")

    async def progress(self, text: str) -> None:
        if text != self._last_progress:
            self._last_progress = text
            self.console.print(f"[dim]  … {text}[/dim]", highlight=False)

    async def send_file(self, path: Path, *, kind: str, caption: str) -> None:
        path = Path(path)
        self.files.append((kind, path))
        size = path.stat().st_size if path.exists() else 0
        icon = {"image": "🖼", "audio": "🔊"}.get(kind, "📄")
        self.console.print(f"  {icon} [bold]{kind}[/bold] {path} ({size / 1024:.0f} KiB)"
                           + (f" — {caption}" if caption else ""), highlight=False, soft_wrap=True)
        if kind == "audio":
            self.console.print(f"[dim]    play it: ffplay -nodisp -autoexit {path}[/dim]", highlight=False,
                               soft_wrap=True)


def _fmt_s(value: Any) -> str:
    try:
        return f"{float(value):.1f} s"
    except (TypeError, ValueError):
        return "?"


class SwapWatcher:
    """Prints what the GPU scheduler does (its `gpu_*` bus events), so a swap is visible live."""

    def __init__(self, console: Console, snapshot=None) -> None:
        self.console = console
        self.snapshot = snapshot  # () -> GpuSnapshot, for the ETA of a resident being loaded
        self.seen: list[tuple[float, str, dict[str, Any]]] = []
        self.muted = False  # set while the demo shuts down: stand-ins stopping are not news

    @property
    def swaps(self) -> int:
        """Completed swaps in: a resident became ready after a start."""
        return sum(1 for _, kind, _ in self.seen if kind == "gpu_ready")

    def on_event(self, event: Event) -> None:
        if not event.type.startswith("gpu_"):
            return
        self.seen.append((event.time, event.type, dict(event.data)))
        line = self.describe(event.type, event.data)
        if line and not self.muted:
            self.console.print(f"[bold magenta]  ⇄ GPU[/bold magenta] {line}", highlight=False, soft_wrap=True)

    def _eta(self, resident: str) -> str:
        if self.snapshot is None:
            return ""
        try:
            eta = self.snapshot().residents.get(resident, {}).get("eta_s")
        except Exception:
            return ""
        return f", ETA {_fmt_s(eta)}" if eta else ""

    def describe(self, kind: str, d: dict[str, Any]) -> str | None:
        resident = str(d.get("resident") or d.get("to") or d.get("from") or "")
        why = f" — {d['reason']}" if d.get("reason") else ""
        if kind == "gpu_swapping" and d.get("to"):
            return f"loading [bold]{d['to']}[/bold]{self._eta(d['to'])}{why}"
        if kind == "gpu_swapping" and d.get("from"):
            return f"stopping [bold]{d['from']}[/bold] to free its memory{why}"
        if kind == "gpu_ready":
            return f"[green]{resident} is ready[/green] after {_fmt_s(d.get('seconds'))}"
        if kind == "gpu_stopped":
            return f"{resident} stopped after {_fmt_s(d.get('seconds'))}"
        if kind == "gpu_queued":
            eta = d.get("eta_s")
            if not eta:
                return None  # the resident is already there: no wait worth showing
            return f"a {d.get('job_class', 'job')} job waits for [bold]{resident}[/bold], ETA {_fmt_s(eta)}"
        if kind in ("gpu_start_failed", "gpu_resident_crashed", "gpu_job_failed", "gpu_lease_revoked"):
            return f"[red]{kind[4:].replace('_', ' ')}: {resident} {d.get('error') or ''}[/red]"
        if kind == "gpu_memory_warning":
            return f"[yellow]memory of {resident} not back yet after {_fmt_s(d.get('waited_s'))}[/yellow]"
        if kind == "gpu_adopted":
            return f"{resident} was already running: adopted"
        return None


class LineReader:
    """Terminal input on a daemon thread, one line per request.

    `asyncio.to_thread(input)` would keep a worker thread blocked in `input()` at exit (Ctrl-C
    would hang until Enter); a daemon thread does not hold the process. The prompt is shown only
    when the demo asks for the next line, so it never lands in the middle of an answer.
    """

    def __init__(self, console: Console) -> None:
        import threading

        self.console = console
        self._want: Any = threading.Event()
        self._prompt = ""
        self._queue: Any = None
        self._loop: Any = None
        self._thread = threading.Thread(target=self._run, name="demo-input", daemon=True)
        self._done = False

    def _run(self) -> None:
        while True:
            self._want.wait()
            self._want.clear()
            try:
                line: str | None = self.console.input(self._prompt)
            except (EOFError, KeyboardInterrupt, OSError):
                line = None
            self._loop.call_soon_threadsafe(self._queue.put_nowait, line)
            if line is None:
                return

    async def readline(self, prompt: str) -> str | None:
        """The next line, or None at end of input."""
        import asyncio

        if self._done:
            return None
        if self._queue is None:
            self._queue, self._loop = asyncio.Queue(), asyncio.get_running_loop()
            self._thread.start()
        self._prompt = prompt
        self._want.set()
        line = await self._queue.get()
        self._done = line is None
        return line
