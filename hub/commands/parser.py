"""Split a chat line into a command and its arguments, and check them against a declared signature.

The same signature object drives parsing, the usage line and `/help`, so they cannot disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hub import kvargs
from hub.errors import HubError

COMMAND_RE = re.compile(r"^[/!]([a-z][a-z0-9_-]*)(?:\s+(.*))?$", re.S)


class UsageError(HubError):
    """Bad arguments for a command; the message is the usage line plus what was wrong."""


@dataclass(frozen=True)
class Arg:
    """One argument: a positional word, the free-text rest of the line, or a `--name value` option."""

    name: str
    kind: str = "word"  # word | rest | raw | option | flag (raw: the rest of the line as typed, quotes kept)
    required: bool = True
    choices: tuple[str, ...] = ()
    default: Any = None
    help: str = ""
    metavar: str | None = None

    def usage(self) -> str:
        if self.kind in ("option", "flag"):
            shown = "" if self.kind == "flag" else f" {self.metavar or self.default or self.name}"
            return f"[--{self.name}{shown}]"
        inner = "|".join(self.choices) if self.choices else (self.metavar or self.name)
        return f"<{inner}>" if self.required else f"[{inner}]"


@dataclass(frozen=True)
class Signature:
    command: str
    args: tuple[Arg, ...] = ()
    extra_kv: bool = False  # accept `key=value` / `--key value` pairs not declared (skill params)

    def usage(self) -> str:
        parts = [f"/{self.command}", *(a.usage() for a in self.args)]
        if self.extra_kv:
            parts.append("[key=value ...]")
        return "usage: " + " ".join(parts)


@dataclass
class Parsed:
    command: str
    values: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)


def split_command(text: str) -> tuple[str, str] | None:
    """`"/image a cat"` -> `("image", "a cat")`; None when the text is not a command."""
    m = COMMAND_RE.match(text.strip())
    if not m:
        return None
    return m.group(1), (m.group(2) or "").strip()


def _tokens(rest: str) -> list[str]:
    try:
        return kvargs.split_words(rest)
    except kvargs.ArgumentError:  # an unbalanced quote (an apostrophe in free text): plain words
        return rest.split()


def _parse_raw(sig: Signature, rest: str, positionals: list[Arg], out: Parsed) -> Parsed:
    """Words up to the `raw` argument, then the rest of the line verbatim for the sub-command's parser."""
    raw = next(a for a in positionals if a.kind == "raw")
    before = positionals[:positionals.index(raw)]
    try:
        words, tail = kvargs.remainder(rest, len(before))
    except kvargs.ArgumentError as exc:
        raise UsageError(f"{exc}\n{sig.usage()}") from None
    for arg, word in zip(before, words, strict=False):
        _check_choice(sig, arg, word)
        out.values[arg.name] = word
    for arg in before[len(words):]:
        if arg.required:
            raise UsageError(f"missing <{arg.metavar or arg.name}>\n{sig.usage()}")
        out.values[arg.name] = arg.default
    if not tail and raw.required:
        raise UsageError(f"missing <{raw.metavar or raw.name}>\n{sig.usage()}")
    out.values[raw.name] = tail or raw.default
    for opt in sig.args:
        if opt.kind in ("option", "flag"):
            out.values.setdefault(opt.name, False if opt.kind == "flag" else opt.default)
    return out


BOOLS = ("true", "false", "yes", "no", "on", "off")


def parse_args(sig: Signature, rest: str) -> Parsed:
    """Match `rest` against `sig`; raise UsageError naming what is wrong plus the usage line."""
    out = Parsed(sig.command)
    options = {a.name: a for a in sig.args if a.kind in ("option", "flag")}
    positionals = [a for a in sig.args if a.kind in ("word", "rest", "raw")]
    if any(a.kind == "raw" for a in positionals):
        return _parse_raw(sig, rest, positionals, out)
    words: list[str] = []
    tokens = _tokens(rest)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("--") and len(tok) > 2:
            key, eq, val = tok[2:].partition("=")
            key = key.replace("-", "_")
            opt = options.get(key)
            if opt is not None and opt.kind == "flag":
                out.values[key] = True
            elif opt is not None or sig.extra_kv:
                nxt = tokens[i + 1] if i + 1 < len(tokens) else None
                if not eq and opt is not None and str(opt.default).lower() in BOOLS and (
                        nxt is None or nxt.lower() not in BOOLS):
                    val = "true"  # a yes/no option given bare, e.g. `/publish --draft notes...`
                elif not eq:
                    if nxt is None:
                        raise UsageError(f"--{key} needs a value\n{sig.usage()}")
                    i += 1
                    val = nxt
                if opt is not None:
                    _check_choice(sig, opt, val)
                    out.values[key] = val
                else:
                    out.extra[key] = val
            else:
                raise UsageError(f"unknown option --{key}\n{sig.usage()}")
        elif (pair := kvargs.split_assignment(tok)) and (sig.extra_kv or pair[0] in options):
            key, val = pair
            if key in options:
                out.values[key] = val
            else:
                out.extra[key] = val
        else:
            words.append(tok)
        i += 1
    for pos, arg in enumerate(positionals):
        if arg.kind == "rest":
            value = " ".join(words[pos:]) if pos < len(words) else ""
            words = words[:pos]
            if value:
                _check_choice(sig, arg, value)
                out.values[arg.name] = value
            elif arg.required:
                raise UsageError(f"missing <{arg.metavar or arg.name}>\n{sig.usage()}")
            else:
                out.values[arg.name] = arg.default
            break
        if pos < len(words):
            _check_choice(sig, arg, words[pos])
            out.values[arg.name] = words[pos]
        elif arg.required:
            raise UsageError(f"missing <{arg.metavar or arg.name}>\n{sig.usage()}")
        else:
            out.values[arg.name] = arg.default
    else:
        if len(words) > len(positionals):
            extra = " ".join(words[len(positionals):])
            raise UsageError(f"unexpected argument {extra!r}\n{sig.usage()}")
    for opt in options.values():
        out.values.setdefault(opt.name, False if opt.kind == "flag" else opt.default)
    return out


def _check_choice(sig: Signature, arg: Arg, value: str) -> None:
    if arg.choices and value not in arg.choices:
        raise UsageError(f"{arg.name} must be one of {', '.join(arg.choices)} (got {value!r})\n{sig.usage()}")
