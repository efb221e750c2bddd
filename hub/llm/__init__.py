"""LLM providers behind one interface: local (SGLang via the openai SDK) and cloud (Anthropic SDK)."""

from hub.llm.errors import (
    AuthFailed,
    BadRequest,
    FirstTokenTimeout,
    LLMError,
    ProviderUnavailable,
    RateLimited,
    StallTimeout,
    StreamBroken,
)
from hub.llm.types import Completion, Message, ToolCall, ToolSpec, Usage

__all__ = [
    "AuthFailed", "BadRequest", "Completion", "FirstTokenTimeout", "LLMError", "Message", "ProviderUnavailable",
    "RateLimited", "StallTimeout", "StreamBroken", "ToolCall", "ToolSpec", "Usage",
]
