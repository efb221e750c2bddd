"""Load YAML into HubConfig with errors that name the YAML path and line.

Secrets are never written literally in YAML (an inline `api_key:`, `token:`, `password:` is an
error naming the line): `api_key_file: /run/secrets/x` reads a file, `api_key_env: NAME` reads an
environment variable, and `SOVHUB_LLM__CLOUD__API_KEY=...` overrides any key (double underscore
between levels). Size, nesting, alias expansion and secret files are bounded (`guard.py`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, SecretStr, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from hub.config.guard import MAX_CONFIG_BYTES, MAX_SECRET_BYTES, TooCostly, check_shape, read_bounded
from hub.config.model import HubConfig
from hub.errors import ConfigError

ENV_PREFIX = "SOVHUB_"


@dataclass(frozen=True)
class ConfigIssue:
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.path}: {self.message}{where}"


def _message(err: dict[str, Any]) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    for op, sym in (("greater_than", ">"), ("greater_than_equal", ">="), ("less_than", "<"),
                    ("less_than_equal", "<=")):
        if kind == op:
            bound = next(iter(ctx.values()), "?")
            if isinstance(bound, float) and bound.is_integer():
                bound = int(bound)
            return f"must be {sym} {bound}"
    msg = err["msg"]
    return msg[len("Value error, "):] if msg.startswith("Value error, ") else msg


def _line_of(doc: Any, loc: tuple[Any, ...]) -> int | None:
    """Follow loc through the ruamel document; the line of the deepest key found (1-based)."""
    node, line = doc, None
    for part in loc:
        lc = getattr(node, "lc", None)
        if isinstance(node, Mapping) and part in node:
            if lc is not None:
                try:
                    line = lc.key(part)[0] + 1
                except (KeyError, TypeError, AttributeError):
                    pass
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            if lc is not None:
                try:
                    line = lc.item(part)[0] + 1
                except (KeyError, TypeError, AttributeError):
                    pass
            node = node[part]
        else:
            break
    return line


def _sub_model(annotation: Any) -> Any:
    """The pydantic model inside an annotation (Optional[M], list[M], dict[str, M]), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _sub_model(arg)
        if found is not None:
            return found
    return None


def _child_model(model: Any, key: Any) -> Any:
    if model is None:
        return None
    field = model.model_fields.get(key)
    if field is not None:
        return _sub_model(field.annotation)
    if model.model_config.get("extra") == "allow":
        return _sub_model(model.__annotations__.get("__pydantic_extra__"))
    return None


def _is_secret(field: Any) -> bool:
    annotation = field.annotation
    return annotation is SecretStr or SecretStr in get_args(annotation)


def _inline_secret(key: str, loc: tuple) -> str:
    """The refusal of a secret written in the YAML, with the ways to give it instead."""
    message = f"secrets are not written in the config: use {key}_file: /run/secrets/... or {key}_env: VARIABLE"
    if all(isinstance(part, str) for part in loc):
        message += f" (or SOVHUB_{'__'.join(part.upper() for part in loc)})"
    return message


def _is_container_of_models(model: Any, key: Any) -> bool:
    field = model.model_fields.get(key) if model is not None else None
    return field is not None and get_origin(field.annotation) in (dict, list)


@dataclass
class _Resolver:
    """Replaces `x_file:` / `x_env:` keys by `x:` with the secret's value, where `x` is a field."""

    doc: Any
    environ: Mapping[str, str]
    strict: bool
    issues: list[ConfigIssue]
    warnings: list[ConfigIssue]

    def resolve(self, node: Any, model: Any, path: str, loc: tuple) -> Any:
        if isinstance(node, Mapping):
            return {key: value for key, value in self._mapping(node, model, path, loc)}
        if isinstance(node, list):
            return [self.resolve(v, model, f"{path}[{i}]", (*loc, i)) for i, v in enumerate(node)]
        return node

    def _mapping(self, node: Mapping, model: Any, path: str, loc: tuple):
        fields = model.model_fields if model is not None else {}
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            suffix = next((s for s in ("_file", "_env") if isinstance(key, str) and key.endswith(s)), None)
            target = key[: -len(suffix)] if suffix else None
            if suffix and key not in fields and (model is None or target in fields) and isinstance(value, str):
                secret = self._secret(suffix, value, sub, (*loc, key))
                if secret is not None:
                    yield target, secret
                continue
            if key in fields and _is_secret(fields[key]) and isinstance(value, str | int | float) and str(value):
                self.issues.append(ConfigIssue(sub, _inline_secret(key, (*loc, key)), _line_of(self.doc, (*loc, key))))
                yield key, value  # validated as usual: the refusal is the only issue it causes
            child = _child_model(model, key)
            if _is_container_of_models(model, key) and isinstance(value, Mapping):
                yield key, {k: self.resolve(v, child, f"{sub}.{k}", (*loc, key, k)) for k, v in value.items()}
            else:
                yield key, self.resolve(value, child, sub, (*loc, key))

    def _secret(self, suffix: str, value: str, path: str, loc: tuple) -> str | None:
        line = _line_of(self.doc, loc)
        if suffix == "_file":
            try:
                return read_bounded(value, MAX_SECRET_BYTES, "secret file").strip()
            except TooCostly as exc:
                self.issues.append(ConfigIssue(path, str(exc), line))  # never just a warning
                return None
            except OSError as exc:
                problem = ConfigIssue(path, f"cannot read secret file {value}: {exc.strerror}", line)
        elif value in self.environ:
            return self.environ[value]
        else:
            problem = ConfigIssue(path, f"environment variable {value} is not set", line)
        if self.strict:
            self.issues.append(problem)
            return None
        self.warnings.append(problem)
        return "<unset: secret not available on this machine>"


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "SOVHUB_CONFIG":
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX):].split("__") if k]
        if not keys or keys[0] not in HubConfig.model_fields:
            continue
        node = data
        for key in keys[:-1]:
            nxt = node.get(key)
            if not isinstance(nxt, dict):
                nxt = {}
                node[key] = nxt
            node = nxt
        try:
            node[keys[-1]] = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            node[keys[-1]] = raw


def _parse(text: str, source: str) -> tuple[Any, list[ConfigIssue]]:
    try:
        check_shape(text)  # before the parser: a bomb or a 5,000-deep file never reaches it
    except TooCostly as exc:
        return None, [ConfigIssue(source, str(exc), exc.line)]
    try:
        doc = YAML(typ="rt").load(io.StringIO(text))
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        return None, [ConfigIssue(source, f"not valid YAML: {getattr(exc, 'problem', exc)}", line)]
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        return None, [ConfigIssue(source, "the top level must be a mapping of sections", 1)]
    return doc, []


def _validate(text: str, source: str, environ: Mapping[str, str], strict: bool = True,
              warnings: list[ConfigIssue] | None = None) -> tuple[HubConfig | None, list[ConfigIssue]]:
    """strict=False (config check) accepts secrets that are missing on this machine, as warnings."""
    doc, issues = _parse(text, source)
    if doc is None:
        return None, issues
    resolver = _Resolver(doc, environ, strict, issues, warnings if warnings is not None else [])
    data = resolver.resolve(doc, HubConfig, "", ())
    _apply_env(data, environ)
    try:
        config = HubConfig.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            path = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
            issues.append(ConfigIssue(path or source, _message(err), _line_of(doc, loc)))
        return None, sorted(issues, key=lambda i: (i.line is None, i.line or 0))
    return (config if not issues else None), issues


def default_config_text() -> str:
    """The embedded defaults the demo runs on (no accounts, no GPU)."""
    return (Path(__file__).with_name("defaults.yaml")).read_text()


def check_config(path: str | Path | None, environ: Mapping[str, str] | None = None,
                 warnings: list[ConfigIssue] | None = None) -> list[ConfigIssue]:
    """Every problem in a config file, each with its YAML path and line; [] when it is valid.

    Secrets that this machine does not have (an unset variable, a missing file) are warnings here:
    the file is valid, the deployment is not complete.
    """
    env = environ if environ is not None else os.environ
    if path is None:
        return _validate(default_config_text(), "<defaults>", env, False, warnings)[1]
    p = Path(path)
    try:
        text = _read_config(p)
    except TooCostly as exc:
        return [ConfigIssue(str(p), str(exc))]
    except OSError as exc:
        return [ConfigIssue(str(p), f"cannot read config: {exc.strerror}")]
    return _validate(text, str(p), env, False, warnings)[1]


def _read_config(path: Path) -> str:
    return read_bounded(path, MAX_CONFIG_BYTES, "the config")


def lenient_config(path: str | Path | None, environ: Mapping[str, str] | None = None) -> HubConfig | None:
    """The config as `check_config` sees it (missing secrets allowed), or None when it is invalid."""
    env = environ if environ is not None else os.environ
    if path is None:
        return _validate(default_config_text(), "<defaults>", env, False)[0]
    try:
        text = _read_config(Path(path))
    except (OSError, TooCostly):
        return None
    return _validate(text, str(path), env, False)[0]


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> HubConfig:
    """Load and validate; ConfigError lists every issue. `None` loads the embedded defaults."""
    env = environ if environ is not None else os.environ
    if path is None:
        text, source = default_config_text(), "<defaults>"
    else:
        try:
            text, source = _read_config(Path(path)), str(path)
        except TooCostly as exc:
            raise ConfigError(f"cannot read config: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    config, issues = _validate(text, source, env)
    if issues or config is None:
        raise ConfigError("invalid config:\n" + "\n".join(f"  {i}" for i in issues))
    if overrides:
        config = _merge(config, overrides)
    return config


def _merge(config: HubConfig, overrides: Mapping[str, Any]) -> HubConfig:
    data = config.model_dump(mode="python", round_trip=True)

    def deep(dst: dict, src: Mapping) -> None:
        for k, v in src.items():
            if isinstance(v, Mapping) and isinstance(dst.get(k), dict):
                deep(dst[k], v)
            else:
                dst[k] = v

    deep(data, overrides)
    return HubConfig.model_validate(data)
