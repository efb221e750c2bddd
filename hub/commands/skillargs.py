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
    return files_in(result.model_dump())


def files_in(value: Any) -> list[tuple[Path, str]]:
    """Existing local files named (by absolute path) anywhere in a result's data, with their kind."""
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

    visit(value)
    return found


NOTE_KEYS = ("warning", "error")  # said even when a summary says the rest
TITLE_KEYS = ("title", "name", "slug", "id")


def _is_link(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _is_sent_file(value: Any) -> bool:
    """An existing local file: it arrives as an attachment, so the text need not repeat it."""
    return isinstance(value, str) and len(value) < 4096 and Path(value).is_absolute() and Path(value).is_file()


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split()) if "\n" not in text[:limit] else text
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _title(item: dict[str, Any]) -> str:
    for key in TITLE_KEYS:
        if isinstance(item.get(key), (str, int)) and str(item[key]):
            return str(item[key])
    first = next((v for v in item.values() if isinstance(v, (str, int, float)) and not isinstance(v, bool)), None)
    return str(first) if first is not None else f"{len(item)} fields"


def _compact(value: Any) -> str | None:
    """One short line for a field, or None when there is nothing worth saying."""
    if value is None or value == "" or value == [] or value == {}:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    if isinstance(value, str):
        return _clip(value, 200)
    if isinstance(value, list):
        if all(isinstance(v, dict) for v in value):
            shown = "; ".join(_clip(_title(v), 60) for v in value[:3])
        elif all(isinstance(v, (str, int, float)) for v in value) and len(value) <= 6:
            shown = ", ".join(_clip(str(v), 60) for v in value)
            return _clip(shown, 200)
        else:
            shown = ", ".join(_clip(str(v), 40) for v in value[:3])
        return f"{len(value)}: {shown}" + (" …" if len(value) > 3 else "")
    if isinstance(value, dict):
        parts = [f"{k} {_compact(v)}" for k, v in value.items()
                 if isinstance(v, (str, int, float, bool)) and _compact(v) is not None]
        return _clip(", ".join(parts), 200) if parts else f"{len(value)} fields"
    return _clip(str(value), 200)


def result_text(skill: Skill, result: BaseModel) -> str:
    """A readable answer: the result's own `summary` when it has one (plus links and notes), else one
    short line per field. Files that exist locally are left out (they are sent as attachments)."""
    data = result.model_dump(mode="json")
    summary = data.get("summary")
    if isinstance(summary, str) and summary.strip():
        extra = [f"- {key}: {value}" for key, value in data.items()
                 if key != "summary" and (_is_link(value) or (key in NOTE_KEYS and value))]
        return summary.strip() + ("\n\n" + "\n".join(extra) if extra else "")
    lines = []
    for key, value in data.items():
        if _is_sent_file(value):
            continue
        shown = value if _is_link(value) else _compact(value)
        if shown is not None:
            lines.append(f"- {key}: {shown}")
    return f"**{skill.name}** done" + ("\n" + "\n".join(lines) if lines else "")
