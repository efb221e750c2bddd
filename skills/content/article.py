"""Notes -> article: the local model's prompt, parsing its reply, Astro frontmatter."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import yaml

from hub.errors import HubError
from skills.content.script import split_frontmatter, strip_thinking

ARTICLE_SYSTEM = (
    "You are the author's technical editor. Turn the raw engineering notes into a finished blog "
    "article in Markdown. Begin with a YAML frontmatter block between --- lines holding `title` "
    "(short and specific), `description` (one sentence, at most 160 characters) and `tags` (3 to 6 "
    "lowercase words). Then write the body: an opening paragraph, sections with ## headings, and code "
    "blocks from the notes where they help. Use only facts found in the notes; keep numbers exact. "
    "Do not repeat the title as a # heading."
)
MAX_NOTES_CHARS = 120_000


class ArticleError(HubError):
    pass


@dataclass
class Draft:
    title: str
    description: str
    tags: list[str]
    body: str


def _unfence(text: str) -> str:
    m = re.match(r"\A\s*```(?:markdown|md)?\s*\n(.*)\n```\s*\Z", text, re.S)
    return m.group(1) if m else text.strip()


def _tags(raw) -> list[str]:
    items = raw if isinstance(raw, list) else str(raw or "").split(",")
    out: list[str] = []
    for item in items:
        tag = re.sub(r"[^a-z0-9]+", "-", str(item).lower()).strip("-")
        if tag and tag not in out:
            out.append(tag)
    return out[:8]


def _first_sentence(body: str, limit: int = 160) -> str:
    for para in re.split(r"\n\s*\n", body):
        para = para.strip()
        if para and not para.startswith(("#", "```", "-", "*", ">", "|", "<", "!")):
            text = re.sub(r"[*_`]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", para)
            text = re.sub(r"\s+", " ", text)
            sentence = re.split(r"(?<=[.!?])\s", text)[0]
            return sentence if len(sentence) <= limit else sentence[: limit - 1].rsplit(" ", 1)[0] + "…"
    return ""


def parse_draft(reply: str) -> Draft:
    """Accept what a model really sends: fenced or not, with or without frontmatter."""
    meta, body = split_frontmatter(_unfence(strip_thinking(reply)))
    body = body.strip()
    title = str(meta.get("title") or "").strip()
    heading = re.match(r"\A#\s+(.+?)\s*\n", body + "\n")
    if heading:
        title = title or heading.group(1).strip()
        body = body[heading.end() :].strip()  # the blog layout renders the title itself
    if not title:
        raise ArticleError("the local model's article has no title (no frontmatter title, no # heading)")
    if not body:
        raise ArticleError("the local model's article has no body")
    description = re.sub(r"\s+", " ", str(meta.get("description") or "")).strip() or _first_sentence(body)
    return Draft(title=title, description=description[:200], tags=_tags(meta.get("tags")), body=body)


def render_markdown(draft: Draft, pub_date: dt.date, hero_image: str | None) -> str:
    """Astro content markdown with the blog template's frontmatter."""
    meta: dict = {"title": draft.title, "description": draft.description, "pubDate": pub_date}
    if hero_image:
        meta["heroImage"] = hero_image
    if draft.tags:
        meta["tags"] = draft.tags
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{front}---\n\n{draft.body}\n"
