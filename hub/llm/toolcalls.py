"""Defensive parsing of Mistral tool calls that leak into `content` as `[TOOL_CALLS]...` text.

When SGLang's `--tool-call-parser mistral` misses a call (the most reported local-model failure in
OpenClaw), the raw control text reaches the client. Formats seen from Mistral tokenizers:
`[TOOL_CALLS]name[ARGS]{...}` (v11+, repeated per call), `[TOOL_CALLS]name[CALL_ID]id[ARGS]{...}`,
and the older `[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]`.
`LeakGuard` holds such text back while streaming so the user never sees it.
"""

from __future__ import annotations

import json
import re
import secrets
import string

from hub.llm.types import ToolCall

MARKER = "[TOOL_CALLS]"
_NAME = re.compile(r"\s*([A-Za-z0-9_.\-]+)\s*(?:\[CALL_ID\]\s*([A-Za-z0-9_\-]+)\s*)?(?:\[ARGS\])?\s*")
_DECODER = json.JSONDecoder()


def new_call_id() -> str:
    """Mistral's chat template wants 9 alphanumeric characters."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(9))


def _arguments(value) -> dict:
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else {}
    if not isinstance(value, dict):
        raise ValueError("tool arguments must be a JSON object")
    return value


def parse_leaked(text: str) -> tuple[str, list[ToolCall]]:
    """Split `text` into (text before the calls, calls). No marker or unparsable calls: (text, [])."""
    start = text.find(MARKER)
    if start < 0:
        return text, []
    rest = text[start:]
    calls: list[ToolCall] = []
    try:
        while rest.startswith(MARKER):
            rest = rest[len(MARKER):].lstrip()
            if rest.startswith("["):
                items, end = _DECODER.raw_decode(rest)
                for item in items:
                    calls.append(ToolCall(item.get("id") or new_call_id(), item["name"],
                                          _arguments(item.get("arguments", {}))))
                rest = rest[end:].lstrip()
                continue
            m = _NAME.match(rest)
            if not m or not m.group(1):
                raise ValueError("no tool name after [TOOL_CALLS]")
            rest = rest[m.end():]
            args, end = _DECODER.raw_decode(rest)
            calls.append(ToolCall(m.group(2) or new_call_id(), m.group(1), _arguments(args)))
            rest = rest[end:].lstrip()
    except (ValueError, KeyError, TypeError, AttributeError):
        return text, []
    return text[:start].rstrip(), calls


class LeakGuard:
    """Streams text through, holding back anything from a `[TOOL_CALLS]` marker onwards."""

    def __init__(self) -> None:
        self.pending = ""
        self.tripped = False

    def feed(self, piece: str) -> str:
        if self.tripped:
            return ""
        if not self.pending and "[" not in piece:
            return piece
        text = self.pending + piece
        i = text.find(MARKER)
        if i >= 0:
            self.tripped = True
            self.pending = ""
            return text[:i]
        keep = 0
        for k in range(min(len(MARKER) - 1, len(text)), 0, -1):
            if MARKER.startswith(text[-k:]):
                keep = k
                break
        self.pending = text[len(text) - keep:] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        out, self.pending = ("" if self.tripped else self.pending), ""
        return out
