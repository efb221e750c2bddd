"""Message bodies: markdown to a safe `formatted_body`, relations (thread / reply / edit), clean splits.

Raw HTML in model output is escaped, never passed through (markdown-it with html off; link
validation drops `javascript:` URLs), so a model cannot inject markup into a client.
"""

from __future__ import annotations

from typing import Any

from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough")

HTML_FORMAT = "org.matrix.custom.html"


def render_html(text: str) -> str:
    html = _md.render(text).strip()
    if html.startswith("<p>") and html.endswith("</p>") and html.count("<p>") == 1:
        html = html[3:-4]  # a one-paragraph message needs no block wrapper
    return html


def message_content(text: str, msgtype: str = "m.notice") -> dict[str, Any]:
    """`m.text` notifies (push rules), `m.notice` is quiet; both render the same markdown."""
    return {"msgtype": msgtype, "body": text, "format": HTML_FORMAT, "formatted_body": render_html(text)}


def notice_content(text: str) -> dict[str, Any]:
    return message_content(text, "m.notice")


def relation(thread_root: str | None, reply_to: str | None) -> dict[str, Any] | None:
    """In the thread when the question was in one (with a reply fallback), else a plain reply."""
    if thread_root:
        return {"rel_type": "m.thread", "event_id": thread_root, "is_falling_back": True,
                "m.in_reply_to": {"event_id": reply_to or thread_root}}
    if reply_to:
        return {"m.in_reply_to": {"event_id": reply_to}}
    return None


def with_relation(content: dict[str, Any], rel: dict[str, Any] | None) -> dict[str, Any]:
    if rel:
        content = {**content, "m.relates_to": rel}
    return content


def edit_content(original_event_id: str, text: str, msgtype: str = "m.notice") -> dict[str, Any]:
    new = message_content(text, msgtype)
    return {
        "msgtype": msgtype, "body": f"* {text}", "format": HTML_FORMAT,
        "formatted_body": f"* {new['formatted_body']}",
        "m.new_content": new,
        "m.relates_to": {"rel_type": "m.replace", "event_id": original_event_id},
    }


def split_text(text: str, limit: int) -> list[str]:
    """Split at paragraph, then line, then word boundaries, never inside a word unless it must.

    An open code fence is closed at the end of a part and reopened in the next one.
    """
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = -1
        for sep in ("\n\n", "\n", " "):
            cut = rest.rfind(sep, int(limit * 0.5), limit)
            if cut > 0:
                break
        if cut <= 0:
            cut = limit
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip("\n ")
        if head.count("```") % 2 == 1:
            head += "\n```"
            rest = "```\n" + rest
        parts.append(head)
    parts.append(rest)
    return parts
