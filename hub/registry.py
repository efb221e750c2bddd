"""The one skill registry: declared once, exported to chat, model tools, MCP and cron.

Skills are discovered from the `skills` package (every module-level `Skill` object), so there is no
hand-kept list to drift.
"""

from __future__ import annotations

import importlib
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

    def validate_params(self, raw: dict[str, Any] | BaseModel | None) -> BaseModel:
        """Validate raw arguments; InvalidParams names each bad field."""
        if isinstance(raw, self.params):
            return raw
        if isinstance(raw, BaseModel):
            raw = raw.model_dump()
        try:
            return self.params.model_validate(raw or {})
        except ValidationError as exc:
            errors = [(".".join(str(p) for p in err["loc"]) or "(arguments)", err["msg"]) for err in exc.errors()]
            raise InvalidParams(self.name, errors) from None

    def input_schema(self) -> dict[str, Any]:
        return self.params.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        return self.result.model_json_schema()


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
) -> Callable[[Handler], Skill]:
    """Declare a skill: the decorated handler becomes a `Skill` the registry discovers."""

    def wrap(handler: Handler) -> Skill:
        if not NAME_RE.match(name):
            raise ValueError(f"skill name {name!r} must be snake_case (a-z, 0-9, _)")
        if not description.strip():
            raise ValueError(f"skill {name} needs a description")
        return Skill(
            name=name, description=description.strip(), params=params, result=result, handler=handler,
            resident=resident, permission=permission, timeout_s=timeout_s, long_running=long_running,
            est_seconds=est_seconds, job_class=job_class, command=command,
        )

    return wrap


class SkillRegistry:
    def __init__(self) -> None:
        self._skills: dict[str, Skill] = {}

    def register(self, item: Skill) -> Skill:
        existing = self._skills.get(item.name)
        if existing is not None and existing is not item:
            raise ValueError(f"two skills are named {item.name!r}")
        if item.command:
            for other in self._skills.values():
                if other is not item and other.command == item.command:
                    raise ValueError(f"skills {other.name} and {item.name} both claim /{item.command}")
        self._skills[item.name] = item
        return item

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
        """Import every module of `package` and register each module-level Skill found."""
        pkg = importlib.import_module(package)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
            module = importlib.import_module(info.name)
            for value in vars(module).values():
                if isinstance(value, Skill) and (enabled is None or value.name in enabled):
                    self.register(value)
