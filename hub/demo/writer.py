"""The demo's stand-in "writes" the article for `/publish`.

The SGLang stand-in is deterministic: it echoes its prompt ("You said: ..."), so it cannot turn
notes into an article with frontmatter. When a publish job is granted the local model, the demo
queues on the stand-in — through its documented `POST /_sim/script` API — one reply: an article
assembled from the job's notes. The rest of the pipeline (hero image on ComfyUI, the draft in the
blog) then runs for real. On a real GB10 Mistral Small 4 writes the article; this file is not used.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import httpx
import yaml

from hub.context import Context
from hub.events import Event

log = logging.getLogger(__name__)

WRITING_SKILLS = ("publish_article",)


def article_from_notes(notes: str) -> str:
    """A plausible article in the shape the publish skill asks its model for."""
    lines = [line.rstrip() for line in notes.strip().splitlines()]
    heading = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
    if heading is not None:
        title = lines.pop(heading)[2:].strip()
    else:
        title = next((line.strip("#-* ") for line in lines if line.strip()), "Notes from the box")[:80]
    body = "\n".join(lines).strip() or notes.strip()
    first = re.split(r"(?<=[.!?])\s", re.sub(r"\s+", " ", re.sub(r"^[-*#]\s*", "", body, flags=re.M)), maxsplit=1)
    description = (first[0] if first else title)[:150]
    front = yaml.safe_dump({"title": title, "description": description, "tags": ["gb10", "notes", "sovhub"]},
                           sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n\nThese are the notes of the day, tidied up.\n\n## What we found\n\n{body}\n"


class StandInWriter:
    """Knows a writing job's notes from the moment the demo approves it (publishing is destructive,
    so the demo's approver always sees its params before the job can lease the GPU)."""

    def __init__(self, llm_resident: str, base_url: str) -> None:
        self.llm_resident = llm_resident
        self.base_url = base_url.rstrip("/")
        self.notes: dict[str, str] = {}  # job context id -> notes

    def approved(self, skill_name: str, params: Any, context: Context) -> None:
        if skill_name not in WRITING_SKILLS:
            return
        dumped = params.model_dump(mode="json") if hasattr(params, "model_dump") else dict(params or {})
        notes = _notes(dumped)
        if notes:
            self.notes[context.id] = notes

    def on_gpu_started(self, event: Event) -> None:
        """Synchronous on purpose: the reply is queued before the granted job can send its prompt."""
        if event.data.get("resident") != self.llm_resident:
            return
        notes = self.notes.pop(event.context.id, None)
        if not notes:
            return
        try:
            httpx.post(f"{self.base_url}/_sim/script", json={"responses": [{"text": article_from_notes(notes)}]},
                       timeout=2.0)
        except httpx.HTTPError as exc:
            log.warning("could not queue the article on the stand-in: %s", exc)


def _notes(params: dict) -> str | None:
    notes = str(params.get("notes") or params.get("notes_path") or "")
    if notes.startswith(("/", "~")) and "\n" not in notes:  # the path of a notes file
        try:
            return Path(notes).expanduser().read_text(errors="replace")
        except OSError:
            return None
    return notes or None
