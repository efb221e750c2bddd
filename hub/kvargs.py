"""Words and `key=value` arguments, one set of rules for chat commands, the CLI and schedules.

Shell-like (`shlex`, POSIX): `text="hello world"` and `'text=hello world'` both give the value
`hello world`; an unbalanced quote is an error that says so. Values are JSON when they parse as
JSON (`times=2`, `tags='["a","b"]'`), else the plain string. A sub-command's arguments are handed
on as the raw text after the command words (`remainder`), so its own parser applies the same rules
to the user's quoting instead of to words already split and re-joined.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from hub.errors import HubError

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ArgumentError(HubError):
    """Arguments that cannot be read (a stray quote, a pair without `=`)."""


def split_words(text: str) -> list[str]:
    """Shell-like words; raises ArgumentError on an unbalanced quote."""
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise ArgumentError(f"cannot read the arguments ({exc}); check the quotes") from None


def remainder(text: str, skip: int) -> tuple[list[str], str]:
    """The first `skip` words of `text` and the rest of it exactly as typed (quotes kept)."""
    lex = shlex.shlex(text, posix=True)
    lex.whitespace_split = True
    words: list[str] = []
    try:
        while len(words) < skip:
            token = lex.get_token()
            if token is None or token == lex.eof:
                return words, ""
            words.append(token)
    except ValueError as exc:
        raise ArgumentError(f"cannot read the arguments ({exc}); check the quotes") from None
    return words, lex.instream.read().strip()


def split_assignment(item: str) -> tuple[str, str] | None:
    """`key=value` -> (key, raw value); None when the word is not an assignment."""
    key, sep, raw = item.partition("=")
    if not sep or not KEY_RE.match(key):
        return None
    return key, raw


def decode(raw: str) -> Any:
    """A value: JSON when it parses as JSON, else the plain string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def parse_assignments(items: list[str], *, what: str = "the skill's arguments") -> dict[str, Any]:
    """Already split words, each `key=value`, to a dict of decoded values."""
    out: dict[str, Any] = {}
    for item in items:
        pair = split_assignment(item)
        if pair is None:
            raise ArgumentError(f"expected key=value for {what}, got {item!r}")
        out[pair[0]] = decode(pair[1])
    return out


def parse_line(text: str, *, what: str = "the skill's arguments") -> dict[str, Any]:
    """A whole line of `key=value` pairs, quoted the shell way."""
    return parse_assignments(split_words(text), what=what)
