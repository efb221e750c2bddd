"""The cloud provider: Anthropic's Messages API through the `anthropic` SDK (`messages.stream`).

Prompt caching: the system prompt and the tool list carry `cache_control` (ephemeral), so every
turn after the first in a 5-minute window reads them from the cache; usage keeps the cache
token counts for pricing. Mid-stream `error` events become typed errors like HTTP errors do.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2

from hub.llm.base import Provider
from hub.llm.errors import AuthFailed, BadRequest, LLMError, ProviderUnavailable, RateLimited
from hub.llm.retry import retry_after_from
from hub.llm.types import Completion, Message, OnText, ToolCall, ToolSpec, Usage

STOP = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length", "stop_sequence": "stop"}
CACHE = {"type": "ephemeral"}


def to_anthropic(messages: list[Message], tools: list[ToolSpec]) -> tuple[list[dict], list[dict], list[dict]]:
    """(system blocks, messages, tools) with cache breakpoints on the system prompt and the tools."""
    system_text = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
    system = [{"type": "text", "text": system_text, "cache_control": CACHE}] if system_text else []
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content or "(empty)"}
            if m.is_error:
                block["is_error"] = True
            role, blocks = "user", [block]
        elif m.role == "assistant":
            blocks = [{"type": "text", "text": m.content}] if m.content else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in m.tool_calls]
            role = "assistant"
        else:
            role, blocks = "user", [{"type": "text", "text": m.content or "(empty)"}]
        if not blocks:
            continue
        if out and out[-1]["role"] == role:  # the API wants alternating roles: merge neighbours
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    specs = [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools]
    if specs:
        specs[-1] = {**specs[-1], "cache_control": CACHE}
    return system, out, specs


def map_anthropic_error(provider: str, exc: Exception) -> LLMError:
    if isinstance(exc, anthropic.RateLimitError):
        return RateLimited(provider, "rate limited (429)", retry_after=retry_after_from(exc.response.headers))
    if isinstance(exc, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
        return AuthFailed(provider, f"Anthropic refused the API key ({exc.status_code})")
    if isinstance(exc, anthropic.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        err = body.get("error") if isinstance(body.get("error"), dict) else {}
        kind = err.get("type", "")
        message = err.get("message") or str(exc)[:200]
        if kind == "rate_limit_error":
            return RateLimited(provider, f"rate limited: {message}",
                               retry_after=retry_after_from(exc.response.headers))
        if kind in ("overloaded_error", "api_error") or exc.status_code >= 500:
            return ProviderUnavailable(provider, f"{kind or exc.status_code}: {message}",
                                       retry_after=retry_after_from(exc.response.headers))
        return BadRequest(provider, f"request refused ({exc.status_code} {kind}): {message}")
    if isinstance(exc, anthropic.APIConnectionError | httpx2.HTTPError):
        return ProviderUnavailable(provider, f"connection failed ({type(exc.__cause__ or exc).__name__})")
    return ProviderUnavailable(provider, f"{type(exc).__name__}: {exc}")


class CloudProvider(Provider):
    name = "cloud"

    def __init__(self, *, model: str, api_key: str | None, base_url: str | None = None,
                 first_token_timeout_s: float = 30, stall_timeout_s: float = 30, max_retries: int = 2,
                 **kw: Any) -> None:
        super().__init__(model=model, first_token_timeout_s=first_token_timeout_s,
                         stall_timeout_s=stall_timeout_s, max_retries=max_retries, **kw)
        read = max(first_token_timeout_s, stall_timeout_s) + 5
        self.client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0,
                                               timeout=httpx2.Timeout(read, connect=10.0))

    async def _once(self, messages: list[Message], tools: list[ToolSpec], max_tokens: int,
                    on_text: OnText) -> Completion:
        system, wire, specs = to_anthropic(messages, tools)
        kwargs: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens, "messages": wire}
        if system:
            kwargs["system"] = system
        if specs:
            kwargs["tools"] = specs
        deadline = self.deadline()
        shown: list[str] = []
        try:
            async with deadline.guard():
                async with self.client.messages.stream(**kwargs) as stream:
                    async for event in stream:
                        if event.type == "text":
                            deadline.tick()
                            shown.append(event.text)
                            await on_text(event.text)
                        elif event.type == "input_json":
                            deadline.tick()
                    final = await stream.get_final_message()
        except LLMError as exc:
            exc.partial = "".join(shown)
            raise
        except (anthropic.AnthropicError, httpx2.HTTPError) as exc:
            error = map_anthropic_error(self.name, exc)
            error.partial = "".join(shown)
            raise error from exc
        text = "".join(b.text for b in final.content if b.type == "text")
        calls = [ToolCall(b.id, b.name, dict(b.input) if isinstance(b.input, dict) else {},
                          raw_arguments="" if isinstance(b.input, dict) else json.dumps(b.input))
                 for b in final.content if b.type == "tool_use"]
        u = final.usage
        usage = Usage(input_tokens=u.input_tokens or 0, output_tokens=u.output_tokens or 0,
                      cache_write_tokens=u.cache_creation_input_tokens or 0,
                      cache_read_tokens=u.cache_read_input_tokens or 0)
        return Completion(text=text, tool_calls=calls, usage=usage,
                          stop_reason=STOP.get(final.stop_reason or "", final.stop_reason or "stop"),
                          model=self.model, provider=self.name)

    async def aclose(self) -> None:
        await self.client.close()
