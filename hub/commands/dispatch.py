"""Route a chat line to a built-in command or a skill command; errors become one clear reply."""

from __future__ import annotations

import logging

from hub.commands.env import ROLES, CommandEnv
from hub.commands.handlers import run_skill_command
from hub.commands.parser import Signature, UsageError, parse_args, split_command
from hub.commands.skillargs import skill_params, skill_signature
from hub.commands.table import BY_NAME, COMMANDS
from hub.errors import HubError
from hub.registry import SkillRegistry

log = logging.getLogger(__name__)


def is_command(text: str) -> bool:
    return text.lstrip().startswith("/") and split_command(text) is not None


def signature_for(name: str, skills: SkillRegistry) -> Signature | None:
    if name in BY_NAME:
        return BY_NAME[name].signature
    skill = skills.by_command(name)
    return skill_signature(skill, name) if skill else None


def help_text(skills: SkillRegistry, role: str = "owner", only: str | None = None) -> str:
    """The command list, generated from the table and the registry's command aliases."""
    if only:
        name = only.lstrip("/")
        sig = signature_for(name, skills)
        if sig is None:
            raise UsageError(f"unknown command /{name}; /help lists them")
        summary = BY_NAME[name].summary if name in BY_NAME else skills.by_command(name).description
        lines = [f"`{sig.usage()[len('usage: '):]}` — {summary}"]
        for arg in sig.args:
            if arg.help:
                lines.append(f"- `{arg.name}`: {arg.help}")
        return "\n".join(lines)
    rank = ROLES.index(role) if role in ROLES else 0
    groups: dict[str, list[str]] = {}
    for cmd in COMMANDS:
        if ROLES.index(cmd.role) > rank:
            continue
        groups.setdefault(cmd.group, []).append(f"- `{cmd.signature.usage()[len('usage: '):]}` — {cmd.summary}")
    for skill in skills:
        if skill.command:
            sig = skill_signature(skill)
            groups.setdefault("skills", []).append(
                f"- `{sig.usage()[len('usage: '):]}` — {skill.description.splitlines()[0]}")
    titles = {"chat": "Chat", "hub": "Hub", "skills": "Skills"}
    return "\n\n".join(f"**{titles.get(g, g)}**\n" + "\n".join(lines) for g, lines in groups.items())


async def dispatch(env: CommandEnv, text: str) -> bool:
    """Handle `text` if it is a command. Returns False when it is not one (treat as chat)."""
    split = split_command(text)
    if split is None:
        return False
    name, rest = split
    try:
        await _dispatch(env, name, rest)
    except UsageError as exc:
        await env.io.reply(str(exc))
    except HubError as exc:
        await env.io.reply(f"⚠️ {exc}")
    except Exception as exc:
        log.exception("command /%s failed", name)
        await env.io.reply(f"⚠️ /{name} failed: {type(exc).__name__}: {exc}")
    return True


async def _dispatch(env: CommandEnv, name: str, rest: str) -> None:
    skills = env.hub.skills
    command = BY_NAME.get(name)
    if command is not None:
        if ROLES.index(command.role) > ROLES.index(env.role if env.role in ROLES else "user"):
            raise HubError(f"/{name} is for owners only")
        parsed = parse_args(command.signature, rest)
        if command.handler is None:  # /help
            await env.io.reply(help_text(skills, env.role, parsed.values.get("command")))
            return
        await command.handler(env, parsed)
        return
    skill = skills.by_command(name)
    if skill is None:
        raise UsageError(f"unknown command /{name}; /help lists them")
    sig = skill_signature(skill, name)
    params = skill_params(skill, parse_args(sig, rest))
    await run_skill_command(env, skill, params)
