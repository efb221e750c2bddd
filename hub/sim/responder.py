"""The deterministic "model" behind the LLM stand-ins.

Both stand-ins (SGLang/OpenAI and Anthropic) translate their wire format into a `Prompt`, ask the
`Responder` for a `Reply`, and translate the reply back. Tests and demos steer it two ways:

1. A queue of scripted replies (`POST /_sim/script {"responses": [...]}` or the `script` option):
   each is `{"text": "...", "tool_calls": [{"name": "...", "arguments": {...}}], "tokens": N}`
   (all keys optional) and is used once, first in first out.
2. Markers in the last user message, when the queue is empty:
   - `[[call NAME {"json": "args"}]]` -> a tool call to NAME (several markers = parallel calls);
     only tools offered in the request can be called, otherwise the reply says so;
   - `[[tokens N]]` -> exactly N filler tokens (benchmarks);
   - otherwise the reply echoes: `You said: <text>`.
   After tool results the reply is `Tool results: <name or id>: <content>; ...`.
`max_tokens` cuts a reply short (finish reason "length" / "max_tokens").
"""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

CALL_RE = re.compile(r"\[\[call\s+([A-Za-z0-9_.\-]+)\s*(\{.*?\})?\s*\]\]", re.S)
TOKENS_RE = re.compile(r"\[\[tokens\s+(\d+)\]\]")
WORD_RE = re.compile(r"\S+\s*|\s+")


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = ""


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    filler_tokens: int = 0

    def text_tokens(self) -> list[str]:
        """The reply text cut into stream pieces ("tokens"): one word plus its trailing space."""
        if self.filler_tokens:
            return [f"tok{i} " for i in range(self.filler_tokens)]
        return WORD_RE.findall(self.text)


@dataclass
class Prompt:
    last_user_text: str = ""
    tool_results: list[tuple[str, str]] = field(default_factory=list)  # (name or id, content)
    tool_names: list[str] = field(default_factory=list)
    prompt_tokens: int = 0


def estimate_tokens(obj: Any) -> int:
    """About four characters a token: good enough for usage figures and cache accounting."""
    text = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"), default=str)
    return max(1, len(text) // 4)


def mistral_call_id() -> str:
    """Mistral's chat template wants 9 alphanumeric characters as a tool-call id."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(9))


class Responder:
    """Scripted queue first, then the marker conventions above."""

    def __init__(self, script: list[dict] | None = None) -> None:
        self.queue: list[dict] = list(script or [])

    def push(self, responses: list[dict]) -> None:
        self.queue.extend(responses)

    def clear(self) -> None:
        self.queue.clear()

    def reply(self, prompt: Prompt) -> Reply:
        if self.queue:
            item = self.queue.pop(0)
            calls = [ToolCall(c["name"], dict(c.get("arguments") or {})) for c in item.get("tool_calls", [])]
            return Reply(
                text=item.get("text", ""), tool_calls=calls, filler_tokens=int(item.get("tokens", 0))
            )
        if prompt.tool_results:
            parts = "; ".join(f"{who}: {content}" for who, content in prompt.tool_results)
            return Reply(text=f"Tool results: {parts}")
        text = prompt.last_user_text
        calls = []
        for name, args in CALL_RE.findall(text):
            if name not in prompt.tool_names:
                return Reply(text=f"I have no tool named {name}.")
            calls.append(ToolCall(name, json.loads(args) if args else {}))
        if calls:
            return Reply(tool_calls=calls)
        if m := TOKENS_RE.search(text):
            return Reply(filler_tokens=int(m.group(1)))
        return Reply(text=f"You said: {text}")
