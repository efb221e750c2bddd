"""Chat arguments for a skill, derived from its params model (never a second, hand-kept list).

The first required text field takes the free text (`/image a red fox`); every other field is an
option (`--size 1024x1024`, or `size=1024x1024`). Results are turned into files or text the same way.
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from hub.commands.parser import Arg, Parsed, Signature, UsageError
from hub.registry import Skill

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".webp", ".gif"}
AUDIO_EXT = {".wav", ".mp3", ".ogg", ".opus", ".flac", ".m4a"}


def _is_text(annotation: Any) -> bool:
    if annotation is str:
        return True
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and str in typing.get_args(annotation)


def primary_field(params: type[BaseModel]) -> str | None:
    for name, info in params.model_fields.items():
        if info.is_required() and _is_text(info.annotation):
            return name
    return None


def _shown_default(info) -> str | None:
    if info.is_required():
        return None
    default = info.get_default(call_default_factory=True)
    if default is None or isinstance(default, (list, dict)):
        return None
    return str(default).lower() if isinstance(default, bool) else str(default)


def skill_signature(skill: Skill, command: str | None = None) -> Signature:
    params = skill.params
    main = primary_field(params)
    args: list[Arg] = []
    if main:
        args.append(Arg(main, kind="rest", help=params.model_fields[main].description or ""))
    for name, info in params.model_fields.items():
        if name == main:
            continue
        default = _shown_default(info)
        args.append(Arg(name, kind="option", required=info.is_required(), default=default,
                        metavar=default or name, help=info.description or ""))
    return Signature(command or skill.command or skill.name, tuple(args), extra_kv=False)


def skill_params(skill: Skill, parsed: Parsed) -> dict[str, Any]:
    """Parsed chat arguments -> raw params for `hub.run_skill` (pydantic validates and coerces)."""
    out: dict[str, Any] = {}
    fields = skill.params.model_fields
    for key, value in {**parsed.values, **parsed.extra}.items():
        if value is None:
            continue
        info = fields.get(key)
        if info is None:
            known = ", ".join(fields) or "none"
            raise UsageError(f"{skill.name} has no parameter {key!r} (parameters: {known})")
        if info is not None and isinstance(value, str) and typing.get_origin(info.annotation) in (list, dict):
            try:
                value = json.loads(value)
            except ValueError:
                value = [v.strip() for v in value.split(",") if v.strip()]
        out[key] = value
    # options left at their shown default are dropped: the model's own default applies
    for name, info in fields.items():
        if name in out and not info.is_required() and out[name] == _shown_default(info):
            del out[name]
    return out


def result_files(result: BaseModel) -> list[tuple[Path, str]]:
    """Files a result points to, with their kind (image | audio | file)."""
    found: list[tuple[Path, str]] = []

    def visit(value: Any) -> None:
        if isinstance(value, (str, Path)) and len(str(value)) < 4096:
            path = Path(value)
            if path.suffix and path.is_absolute() and path.is_file():
                ext = path.suffix.lower()
                kind = "image" if ext in IMAGE_EXT else "audio" if ext in AUDIO_EXT else "file"
                found.append((path, kind))
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v)
        elif isinstance(value, dict):
            for v in value.values():
                visit(v)

    visit(result.model_dump())
    return found


def result_text(skill: Skill, result: BaseModel) -> str:
    """A short readable summary of a result's non-file fields."""
    data = result.model_dump(mode="json")
    lines = []
    for key, value in data.items():
        if isinstance(value, str) and Path(value).is_absolute() and Path(value).exists():
            continue
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False)
            if len(value) > 600:
                value = value[:600] + "…"
        lines.append(f"- **{key}**: {value}")
    return f"**{skill.name}** done" + ("\n" + "\n".join(lines) if lines else "")
