"""THE slash-command table. `/help`, parsing and usage errors all come from here.

Skill commands (/image, /podcast, /publish, ...) are not listed: each skill declares its alias with
`command=` in the registry, and the dispatcher derives its arguments from the skill's params model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hub.commands import handlers as h
from hub.commands.parser import Arg, Parsed, Signature
from hub.commands.settings import SETTINGS

if TYPE_CHECKING:
    from hub.commands.env import CommandEnv

Handler = Callable[["CommandEnv", Parsed], Awaitable[None]]


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    handler: Handler | None  # None: handled by the dispatcher itself (/help)
    args: tuple[Arg, ...] = ()
    role: str = "user"  # the least role allowed to use it
    group: str = "chat"
    extra_kv: bool = False

    @property
    def signature(self) -> Signature:
        return Signature(self.name, self.args, self.extra_kv)


COMMANDS: tuple[Command, ...] = (
    Command("help", "this list, or the usage of one command", None,
            (Arg("command", required=False),)),
    Command("new", "start a new conversation here", h.cmd_new),
    Command("compact", "summarise this conversation to save context", h.cmd_compact),
    Command("model", "show or set this room's model policy", h.cmd_model,
            (Arg("policy", required=False, choices=("local", "claude", "auto", "cloud", "local-only")),)),
    Command("local", "answer this one with the local model", h.cmd_local, (Arg("text", kind="rest"),)),
    Command("claude", "answer this one with Claude", h.cmd_claude, (Arg("text", kind="rest"),)),
    Command("why", "why the last answer went local or to the cloud", h.cmd_why),
    Command("budget", "cloud spend against the caps", h.cmd_budget),
    Command("settings", "show or change this room's settings", h.cmd_settings,
            (Arg("key", required=False, choices=tuple(SETTINGS)), Arg("value", required=False)),
            role="owner", group="hub"),
    Command("status", "hub health: GPU resident, queue, jobs, Matrix sync", h.cmd_status, group="hub"),
    Command("gpu", "GPU residents and queue; owners: load, unload, pin NAME 30m, unpin; logs NAME", h.cmd_gpu,
            (Arg("action", required=False, choices=("load", "unload", "pin", "unpin", "logs")),
             Arg("args", kind="raw", required=False, metavar="NAME [30m]")), group="hub"),
    Command("jobs", "recent jobs", h.cmd_jobs, group="hub"),
    Command("cancel", "cancel a job", h.cmd_cancel, (Arg("job"),), group="hub"),
    Command("skills", "what the hub can do", h.cmd_skills, group="skills"),
    Command("run", "run any skill by name", h.cmd_run, (Arg("skill"),), group="skills", extra_kv=True),
    Command("schedule", "manage schedules", h.cmd_schedule,
            (Arg("action", choices=("add", "list", "rm", "pause", "resume")),
             Arg("args", kind="raw", required=False, metavar="args")), group="hub"),
)

BY_NAME: dict[str, Command] = {c.name: c for c in COMMANDS}
