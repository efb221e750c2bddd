"""The compose file as `docker compose` reads it: variables, services, and where container paths live.

Interpolation follows Compose: `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `$$`,
with values from the environment, then the project's `.env` file.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_VAR = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<default>[^}]*))?\})")


class ComposeError(ValueError):
    pass


def interpolate(text: str, env: Mapping[str, str] | None = None) -> str:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR-default}, $$ (a literal $)."""
    env = env or {}

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, default = m.group("name"), m.group("op"), m.group("default")
        value = env.get(name)
        if op in (":-", ":?") and not value:
            value = None
        if value is None:
            if op and op.endswith("?"):
                raise ComposeError(f"variable {name} is required by the compose file: {default}")
            return default or ""
        return value

    return _VAR.sub(sub, text)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a compose `.env` file (comments and blank lines skipped, quotes removed)."""
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip().removeprefix("export ").strip()] = value
    return out


def image_variables(text: str) -> dict[str, str]:
    """service -> the variable its `image:` is set from (`image: ${SGLANG_IMAGE:-...}`)."""
    out: dict[str, str] = {}
    service = None
    in_services = False
    for line in text.splitlines():
        if re.match(r"^services:\s*$", line):
            in_services = True
            continue
        if re.match(r"^\S", line):
            in_services = False
        if in_services:
            m = re.match(r"^  ([A-Za-z0-9_.-]+):\s*$", line)
            if m:
                service = m.group(1)
                continue
            m = re.match(r"^    image:\s*\$\{([A-Za-z_][A-Za-z0-9_]*)", line)
            if m and service:
                out[service] = m.group(1)
    return out


@dataclass
class Mount:
    kind: str          # volume | bind
    source: str        # volume name (the real one, e.g. sovhub-models) or an absolute host path
    target: str


@dataclass
class ComposeFile:
    path: Path
    data: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    image_vars: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, environ: Mapping[str, str] | None = None) -> ComposeFile:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ComposeError(f"cannot read {path}: {exc}") from exc
        env = {**read_env_file(path.parent / ".env"), **dict(environ or {})}
        try:
            data = yaml.safe_load(interpolate(text, env)) or {}
        except yaml.YAMLError as exc:
            raise ComposeError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
            raise ComposeError(f"{path} has no services")
        bad = [name for name, svc in data["services"].items() if not isinstance(svc, dict)]
        if bad:
            raise ComposeError(f"{path}: service {bad[0]} is not a mapping")
        return cls(path=path, data=data, env=env, image_vars=image_variables(text))

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        return self.data["services"]

    def service(self, name: str) -> dict[str, Any]:
        return self.services.get(name) or {}

    def command(self, name: str) -> list[str]:
        cmd = self.service(name).get("command", [])
        return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]

    def volume_name(self, key: str) -> str:
        """The Docker volume behind a compose volume key (its `name:`, else project_key)."""
        spec = (self.data.get("volumes") or {}).get(key) or {}
        if spec.get("name"):
            return str(spec["name"])
        project = self.data.get("name") or self.path.parent.name
        return f"{project}_{key}"

    def host_path(self, source: str) -> Path:
        p = Path(source).expanduser()
        return p if p.is_absolute() else (self.path.parent / p).resolve()

    def mounts(self, name: str) -> list[Mount]:
        out = []
        for v in self.service(name).get("volumes") or []:
            if isinstance(v, dict):
                source, target, kind = str(v.get("source", "")), str(v.get("target", "")), v.get("type", "volume")
            else:
                parts = str(v).split(":")
                source, target = parts[0], parts[1] if len(parts) > 1 else parts[0]
                kind = "bind" if source.startswith((".", "/", "~")) else "volume"
            if kind == "volume":
                out.append(Mount("volume", self.volume_name(source), target))
            else:
                out.append(Mount("bind", str(self.host_path(source)), target))
        return out

    def locate(self, name: str, container_path: str) -> tuple[Mount, str] | None:
        """The mount of service `name` holding `container_path`, and the path inside that mount."""
        best: tuple[Mount, str] | None = None
        for m in self.mounts(name):
            target = m.target.rstrip("/") or "/"
            if container_path == target or container_path.startswith(target + "/"):
                rest = container_path[len(target):].lstrip("/")
                if best is None or len(m.target) > len(best[0].target):
                    best = (m, rest)
        return best

    def secret_file(self, secret: str) -> Path | None:
        spec = (self.data.get("secrets") or {}).get(secret) or {}
        return self.host_path(spec["file"]) if spec.get("file") else None


def server_args(cmd: list[str]) -> dict[str, Any]:
    """`--foo-bar 3 --flag` -> {"foo_bar": 3, "flag": True}, the shape of SGLang's /server_info."""
    args: dict[str, Any] = {}
    i = 0
    while i < len(cmd):
        token = cmd[i]
        if token.startswith("--"):
            name, eq, value = token[2:].partition("=")
            key = name.replace("-", "_")
            if eq:
                args[key] = _scalar(value)
            elif i + 1 < len(cmd) and not cmd[i + 1].startswith("--"):
                args[key] = _scalar(cmd[i + 1])
                i += 1
            else:
                args[key] = True
        i += 1
    return args


def _scalar(value: str) -> Any:
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value
