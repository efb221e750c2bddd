"""Provider-neutral messages, tools and results; each provider translates them to its wire format."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str = ""  # when the model sent JSON that does not parse, kept to report it back


@dataclass(frozen=True)
class Image:
    """An image in a user message: inline (`media_type` + base64 `data`) or by `url`."""

    media_type: str = ""
    data: str = ""
    url: str = ""


@dataclass(frozen=True)
class ToolChoice:
    """Whether and which tool the model must call: `auto`, `none`, `required` (any tool) or `tool` (`name`);
    `parallel=False` asks for at most one call."""

    mode: str = "auto"
    name: str | None = None
    parallel: bool = True


@dataclass
class Message:
    role: str  # system | user | assistant | tool
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None  # the tool's name, on a tool result
    is_error: bool = False
    images: list[Image] = field(default_factory=list)  # user messages; providers that see no images drop them


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.cache_read_tokens += other.cache_read_tokens


@dataclass
class Completion:
    text: str
    tool_calls: list[ToolCall]
    usage: Usage
    stop_reason: str
    model: str
    provider: str


OnText = Callable[[str], Awaitable[None]]
