"""The one skill registry: declared once, exported to chat, model tools, MCP and cron.

Skills are discovered from the `skills` package (every module-level `Skill` object), so there is no
hand-kept list to drift; plugins (installed packages and local folders, `hub.plugins`) go through
the same declaration, the same checks and `register`, which remembers where each skill came from.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import json
import logging
import pkgutil
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from hub.errors import InvalidParams, UnknownSkill

if TYPE_CHECKING:
    from hub.jobs import SkillRun

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
COMMAND_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class Permission(IntEnum):
    """Ordered: a caller granted `write` may run `read` and `write` skills."""

    read = 1
    write = 2
    destructive = 3

    @classmethod
    def parse(cls, value: str | Permission) -> Permission:
        if isinstance(value, Permission):
            return value
        try:
            return cls[value]
        except KeyError:
            raise ValueError(f"unknown permission {value!r} (read, write or destructive)") from None


Handler = Callable[["SkillRun", BaseModel], Awaitable[BaseModel]]


@functools.lru_cache(maxsize=1024)
def _accepted(params: type[BaseModel]) -> frozenset[str]:
    """The argument names (aliases and field names) a params model takes; per class, once."""
    return frozenset({*(f.alias or n for n, f in params.model_fields.items()), *params.model_fields})


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    params: type[BaseModel]
    result: type[BaseModel]
    handler: Handler
    resident: str | None = None
    permission: Permission = Permission.read
    timeout_s: float = 300.0
    long_running: bool = False
    est_seconds: float = 5.0
    job_class: str = "skill"
    command: str | None = None
    open_world: bool = False  # reaches beyond this box: deploys, pushes, or calls an outside service

    def __post_init__(self) -> None:
        check_skill(self)

    def validate_params(self, raw: dict[str, Any] | BaseModel | None) -> BaseModel:
        """Validate raw arguments; InvalidParams names each bad field."""
        if isinstance(raw, self.params):
            return raw
        if isinstance(raw, BaseModel):
            raw = raw.model_dump()
        unknown = self.unknown_arguments(raw or {})
        try:
            model = self.params.model_validate(raw or {})
        except ValidationError as exc:
            errors = [(".".join(str(p) for p in err["loc"]) or "(arguments)", err["msg"]) for err in exc.errors()
                      if err["type"] != "extra_forbidden"]
            raise InvalidParams(self.name, unknown + errors) from None
        if unknown:
            raise InvalidParams(self.name, unknown)
        return model

    def argument_names(self) -> list[str]:
        return sorted(f.alias or n for n, f in self.params.model_fields.items())

    def unknown_arguments(self, raw: Any) -> list[tuple[str, str]]:
        """An argument the skill does not take is an error that names it, never silently dropped."""
        if not isinstance(raw, dict):
            return []
        accepted = _accepted(self.params)
        strays = [k for k in raw if k not in accepted]
        if not strays:  # the common case: no sorted name list, no set built per call
            return []
        known = self.argument_names()
        out = []
        for key in sorted(strays):
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            out.append((str(key), f"unknown argument; {hint}{self.name} takes: {', '.join(known) or 'no arguments'}"))
        return out

    def input_schema(self) -> dict[str, Any]:
        """The params' JSON Schema; unknown arguments are refused, and the schema says so."""
        return {**self.params.model_json_schema(), "additionalProperties": False}

    def output_schema(self) -> dict[str, Any]:
        return self.result.model_json_schema()


def check_skill(item: Skill) -> None:
    """Everything chat, model tools, MCP and cron rely on; ValueError names what is wrong.

    Run when a `Skill` is made (so `@skill` and a hand-built `Skill` get the same checks), which
    makes a plugin with a bad declaration fail at import, where the loader reports and skips it.
    """
    where = f"skill {item.name!r}"
    if not isinstance(item.name, str) or not NAME_RE.match(item.name):
        raise ValueError(f"skill name {item.name!r} must be snake_case (a-z, 0-9, _), 2 to 64 characters")
    if not isinstance(item.description, str) or not item.description.strip():
        raise ValueError(f"{where} needs a description")
    for label, model in (("params", item.params), ("result", item.result)):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ValueError(f"{where}: {label} must be a pydantic BaseModel class, not {model!r}")
    if not inspect.iscoroutinefunction(item.handler):
        raise ValueError(f"{where}: the handler must be an `async def` function")
    if not isinstance(item.permission, Permission):
        raise ValueError(f"{where}: permission must be a Permission (read, write or destructive)")
    if not item.timeout_s > 0 or item.est_seconds < 0:
        raise ValueError(f"{where}: timeout_s must be > 0 and est_seconds >= 0")
    if item.command is not None and not COMMAND_RE.match(str(item.command)):
        raise ValueError(f"{where}: command {item.command!r} must be a-z, 0-9, _ or -, without the slash")
    if item.resident is not None and not (isinstance(item.resident, str) and item.resident):
        raise ValueError(f"{where}: resident must be a resident's name or None")
    try:
        schema = json.loads(json.dumps(item.params.model_json_schema()))
    except Exception as exc:  # an unserialisable default or type: no tool schema could be sent
        raise ValueError(f"{where}: params have no JSON schema ({type(exc).__name__}: {exc})") from None
    if schema.get("type") != "object":
        raise ValueError(f"{where}: params must be an object model")


def skill(
    *,
    name: str,
    description: str,
    params: type[BaseModel],
    result: type[BaseModel],
    resident: str | None = None,
    permission: Permission = Permission.read,
    timeout_s: float = 300.0,
    long_running: bool = False,
    est_seconds: float = 5.0,
    job_class: str = "skill",
    command: str | None = None,
    open_world: bool = False,
) -> Callable[[Handler], Skill]:
    """Declare a skill: the decorated handler becomes a `Skill` the registry discovers."""

    def wrap(handler: Handler) -> Skill:
        return Skill(
            name=name, description=description.strip() if isinstance(description, str) else description,
            params=params, result=result, handler=handler,
            resident=resident, permission=permission, timeout_s=timeout_s, long_running=long_running,
            est_seconds=est_seconds, job_class=job_class, command=command, open_world=open_world,
        )

    return wrap


@dataclass(frozen=True)
class SkillSource:
    """Where a skill came from: `sovhub skills` shows it, clash errors name both sides."""

    kind: str = "built-in"          # built-in | package | folder
    name: str = "skills"            # the package's distribution name, or the folder module's path
    version: str | None = None

    def __str__(self) -> str:
        if self.kind == "built-in":
            return "built-in"
        if self.kind == "package":
            return f"package {self.name} {self.version or '?'}".strip()
        return f"folder {self.name}"


BUILT_IN = SkillSource()


@dataclass(frozen=True)
class SkillProblem:
    """A plugin (or one skill of it) that was skipped, and why."""

    source: str    # e.g. "package sovhub-x 0.1 (entry point x)" or "folder /etc/sovhub/skills/y.py"
    reason: str
    config_path: str = "skills"     # the config key to point at (skills.paths[i] for a folder)

    def __str__(self) -> str:
        return f"{self.source}: {self.reason} (skipped)"


class SkillRegistry:
    def __init__(self) -> None:
        self._skills: dict[str, Skill] = {}
        self._sources: dict[str, SkillSource] = {}
        self.problems: list[SkillProblem] = []

    def register(self, item: Skill, source: SkillSource = BUILT_IN) -> Skill:
        """Add a skill; ValueError on a name or chat-command clash (naming both sources)."""
        existing = self._skills.get(item.name)
        if existing is not None and existing is not item:
            raise ValueError(f"two skills are named {item.name!r} ({self._sources[item.name]} and {source})")
        if item.command:
            for other in self._skills.values():
                if other is not item and other.command == item.command:
                    raise ValueError(f"skills {other.name} ({self._sources[other.name]}) and {item.name} "
                                     f"({source}) both claim /{item.command}")
        self._skills[item.name] = item
        self._sources.setdefault(item.name, source)
        return item

    def source(self, name: str) -> SkillSource:
        """Where the skill came from (built-in, package and version, folder)."""
        self.get(name)
        return self._sources[name]

    def get(self, name: str) -> Skill:
        try:
            return self._skills[name]
        except KeyError:
            known = ", ".join(sorted(self._skills)) or "none"
            raise UnknownSkill(f"unknown skill {name!r} (known: {known})") from None

    def by_command(self, command: str) -> Skill | None:
        for item in self._skills.values():
            if item.command == command:
                return item
        return None

    def __contains__(self, name: object) -> bool:
        return name in self._skills

    def __iter__(self) -> Iterator[Skill]:
        return iter(sorted(self._skills.values(), key=lambda s: s.name))

    def __len__(self) -> int:
        return len(self._skills)

    def allowed(self, grant: Permission) -> list[Skill]:
        return [s for s in self if s.permission <= grant]

    def discover(self, package: str = "skills", enabled: set[str] | None = None) -> None:
        """Import every module of `package` and register each module-level Skill found (built-ins:
        an error here is the hub's own bug, so it raises; plugins go through `hub.plugins`)."""
        for value in module_skills(importlib.import_module(package), walk=True):
            if enabled is None or value.name in enabled:
                self.register(value)


def module_skills(module: Any, *, walk: bool) -> list[Skill]:
    """Every module-level Skill of `module` and, when it is a package and `walk`, of its submodules.

    A skill object re-exported by several modules is listed once.
    """
    modules = [module]
    if walk and hasattr(module, "__path__"):
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{module.__name__}."):
            modules.append(importlib.import_module(info.name))
    found: dict[int, Skill] = {}
    for mod in modules:
        for value in vars(mod).values():
            if isinstance(value, Skill):
                found.setdefault(id(value), value)
    return list(found.values())
