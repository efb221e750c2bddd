"""Is a message addressed to the bot? Pure functions over an event's content and the bot's names.

No I/O, so the rules are table- and property-tested. A message mentions the bot when
- its `m.mentions.user_ids` holds the bot's user id (intentional mentions, what current clients send);
- its `formatted_body` has a pill (a link to `https://matrix.to/#/@bot:server` or `matrix:u/bot:server`);
- its body names the bot — full user id, `@localpart`, localpart or display name — as a whole word:
  "bot, what's up?" and "thanks @bot" do; "a new robot vacuum", "pass me the bottle", "bot-like"
  and "@bot:other.server" (another user with the same localpart) do not.
A reply's fallback (the quoted `> ` lines older clients put before a reply) is not the message
and is ignored; a message that is not a reply keeps its quotes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from html import unescape
from typing import Any
from urllib.parse import unquote

MIN_NAME = 2  # a one-letter display name would match too much plain text

_HREF = re.compile(r"""href\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)
# Before a name: not part of a word, an address or a path. After it: not a word character, not a
# hyphenated word, and not `:server` / `.domain` / `/path` (someone else's id or a URL).
_BEFORE = r"(?<![\w@./#:-])"
_AFTER = r"(?![\w@-]|[.:/]\w)"


@dataclass(frozen=True)
class BotNames:
    user_id: str  # "@bot:example.org"
    display_name: str | None = None  # the bot's display name in this room, if set

    @property
    def localpart(self) -> str:
        return self.user_id.split(":", 1)[0].lstrip("@")

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        names = {self.user_id, f"@{self.localpart}", self.localpart}
        if self.display_name and len(self.display_name.strip()) >= MIN_NAME:
            names.add(self.display_name.strip())
        names = {n for n in names if len(n.lstrip("@")) >= MIN_NAME}
        alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        return re.compile(f"{_BEFORE}(?:{alternatives}){_AFTER}", re.I)


def strip_reply_fallback(body: str) -> str:
    """Drop the `> <@someone> quoted text` lines an older client puts before a reply."""
    lines = body.split("\n")
    if not lines or not lines[0].startswith(">"):
        return body
    i = 0
    while i < len(lines) and lines[i].startswith(">"):
        i += 1
    return "\n".join(lines[i:]).lstrip("\n")


def pill_targets(formatted_body: str | None) -> set[str]:
    """User ids linked from the HTML body (pills), however the link is written."""
    out: set[str] = set()
    for m in _HREF.finditer(formatted_body or ""):
        href = unquote(unescape(m.group(1) or m.group(2) or "")).strip()
        target = ""
        if href.startswith("https://matrix.to/#/"):
            target = href[len("https://matrix.to/#/"):]
        elif href.startswith("matrix:u/"):
            target = "@" + href[len("matrix:u/"):]
        target = target.split("?", 1)[0].split("/", 1)[0]
        if target.startswith("@") and ":" in target:
            out.add(target)
    return out


def message_text(content: dict[str, Any]) -> str:
    """The body a person wrote: a reply's quoted fallback removed."""
    body = content.get("body")
    if not isinstance(body, str):
        return ""
    return (strip_reply_fallback(body) if is_reply(content) else body).strip()


def names_in_text(text: str, names: BotNames) -> bool:
    return bool(names.pattern.search(text))


def is_mentioned(content: dict[str, Any], names: BotNames) -> bool:
    """Whether this message content mentions the bot (see the module docstring for the rules)."""
    mentions = content.get("m.mentions")
    if isinstance(mentions, dict):
        user_ids = mentions.get("user_ids")
        if isinstance(user_ids, list) and names.user_id in user_ids:
            return True
    formatted = content.get("formatted_body")
    if isinstance(formatted, str) and names.user_id in pill_targets(formatted):
        return True
    body = content.get("body")
    if not isinstance(body, str):
        return False
    return names_in_text(strip_reply_fallback(body) if is_reply(content) else body, names)


def is_reply(content: dict[str, Any]) -> bool:
    relates = content.get("m.relates_to")
    return isinstance(relates, dict) and isinstance(relates.get("m.in_reply_to"), dict)


def strip_mention(body: str, names: BotNames) -> str:
    """The question without the bot's name in front: "bot: what time is it" -> "what time is it"."""
    body = body.strip()
    m = names.pattern.match(body)
    if m is None:
        return body
    # Punctuation glued to the name ("bot:", "bot!") goes; after a space only separators do, so a
    # command behind the name ("bot: !claude", "bot /image") keeps its prefix.
    return re.sub(r"^[:,;.!?-]*[\s:,;.-]*", "", body[m.end():]).strip()
