"""Slugs for titles in any script: transliterated to ASCII, never empty, bounded, stable.

`anyascii` (ISC, maintained, no dependencies) turns every Unicode character into ASCII: "Ünïcode"
-> "unicode", Cyrillic, Greek, Korean and Japanese kana by their usual romanisation, Chinese
characters by their pinyin reading (one word each, since those scripts write no spaces) and emoji
by their short names. What is still left of a title after that (punctuation only, or characters
nothing reads) gets a short hash of the title instead, so two such titles never share a slug by
construction; and a slug cut to length keeps a hash of the whole title, so long titles that begin
alike stay apart.

A slug always matches `SLUG_PATTERN` (the one publish_article accepts from callers).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,79}$"
MAX_LEN = 60
HASH_LEN = 8


def title_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LEN]


def transliterate(text: str) -> str:
    """ASCII for `text`; ideographs become separate words (Chinese and Japanese write no spaces)."""
    from anyascii import anyascii  # on first use: skill discovery (and MCP's stdio start) stays light

    out: list[str] = []
    for char in unicodedata.normalize("NFC", text):
        ascii_ = anyascii(char)
        if ascii_ and not char.isascii() and unicodedata.name(char, "").startswith("CJK"):
            out.append(f" {ascii_} ")
        else:
            out.append(ascii_)
    return "".join(out)


def slugify(text: str, limit: int = MAX_LEN, fallback: str = "post") -> str:
    """A URL- and file-safe slug for `text`, at most `limit` characters, never empty."""
    limit = max(limit, len(fallback) + 1 + HASH_LEN)
    slug = re.sub(r"[^a-z0-9]+", "-", transliterate(text).lower()).strip("-")
    if not slug:
        return f"{fallback}-{title_hash(text)}"
    if len(slug) > limit:
        head = slug[: limit - HASH_LEN - 1].rstrip("-")
        return f"{head}-{title_hash(text)}" if head else title_hash(text)
    return slug
