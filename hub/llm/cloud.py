"""The cloud provider: Anthropic's Messages API through the `anthropic` SDK (`messages.stream`).

Prompt caching: the system prompt and the tool list carry `cache_control` (ephemeral), so every
turn after the first in a 5-minute window reads them from the cache; usage keeps the cache
token counts for pricing. Mid-stream `error` events become typed errors like HTTP errors do.

Privacy: a provider built with a `PrivacyGate` asks it before every request (`admit`), so a
local-only context is refused before anything is sent, whoever the caller is (hub/privacy.py).
Billing: the `meter` a caller passes sees the input tokens of `message_start` and the output
produced so far as they stream, so a call that is cancelled, disconnected or ended by an SSE
`error` still reports the tokens the API bills.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2

from hub.lazy import lazy_import
from hub.llm.base import Provider
from hub.llm.errors import AuthFailed, BadRequest, LLMError, ProviderUnavailable, RateLimited
from hub.llm.pricing import estimate_tokens
from hub.llm.retry import retry_after_from
from hub.llm.types import Completion, Image, Message, OnText, ToolCall, ToolChoice, ToolSpec, Usage

anthropic = lazy_import("anthropic")  # the SDK loads with the first request, not with the hub

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
        else:  # images first, then the text, as Anthropic advises
            role = "user"
            blocks = [image_block(i) for i in m.images]
            if m.content or not blocks:
                blocks.append({"type": "text", "text": m.content or "(empty)"})
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


def image_block(image: Image) -> dict[str, Any]:
    if image.url:
        return {"type": "image", "source": {"type": "url", "url": image.url}}
    return {"type": "image", "source": {"type": "base64", "media_type": image.media_type, "data": image.data}}


def tool_choice_wire(choice: ToolChoice) -> dict[str, Any]:
    """OpenAI-style choice -> Anthropic's `tool_choice` (`required` is `any`, a named tool is `tool`)."""
    wire: dict[str, Any] = {"type": {"required": "any"}.get(choice.mode, choice.mode)}
    if choice.mode == "tool":
        wire["name"] = choice.name
    if not choice.parallel and choice.mode != "none":
        wire["disable_parallel_tool_use"] = True
    return wire


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
                 gate=None, **kw: Any) -> None:
        super().__init__(model=model, first_token_timeout_s=first_token_timeout_s,
                         stall_timeout_s=stall_timeout_s, max_retries=max_retries, **kw)
        self.gate = gate  # hub.privacy.PrivacyGate: the hub always sets one
        read = max(first_token_timeout_s, stall_timeout_s) + 5
        self._client: Any = None
        self._make_client = lambda: anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0,
                                                             timeout=httpx2.Timeout(read, connect=10.0))

    def admit(self, context) -> None:
        if self.gate is not None:
            self.gate.check(context)

    async def _once(self, messages: list[Message], tools: list[ToolSpec], max_tokens: int,
                    on_text: OnText, meter: Usage | None = None, tool_choice: ToolChoice | None = None) -> Completion:
        system, wire, specs = to_anthropic(messages, tools)
        kwargs: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens, "messages": wire}
        if system:
            kwargs["system"] = system
        if specs:
            kwargs["tools"] = specs
        if tool_choice is not None and specs:
            kwargs["tool_choice"] = tool_choice_wire(tool_choice)
        deadline = self.deadline()
        shown: list[str] = []
        seen = _Seen()
        try:
            async with deadline.guard():
                async with self.client.messages.stream(**kwargs) as stream:
                    async for event in stream:
                        if event.type == "text":
                            deadline.tick()
                            shown.append(event.text)
                            seen.output(event.text)
                            await on_text(event.text)
                        elif event.type == "input_json":
                            deadline.tick()
                            seen.output(event.partial_json)
                        elif event.type == "message_start":
                            seen.start(event.message.usage)
                        elif event.type == "message_delta":
                            seen.delta(event.usage)
                    final = await stream.get_final_message()
        except LLMError as exc:
            seen.charge(meter)
            exc.partial = "".join(shown)
            raise
        except (anthropic.AnthropicError, httpx2.HTTPError) as exc:
            seen.charge(meter)
            error = map_anthropic_error(self.name, exc)
            error.partial = "".join(shown)
            raise error from exc
        except BaseException:  # cancelled (the caller gave up): what was produced is still billed
            seen.charge(meter)
            raise
        text = "".join(b.text for b in final.content if b.type == "text")
        calls = [ToolCall(b.id, b.name, dict(b.input) if isinstance(b.input, dict) else {},
                          raw_arguments="" if isinstance(b.input, dict) else json.dumps(b.input))
                 for b in final.content if b.type == "tool_use"]
        u = final.usage
        usage = Usage(input_tokens=u.input_tokens or 0, output_tokens=u.output_tokens or 0,
                      cache_write_tokens=u.cache_creation_input_tokens or 0,
                      cache_read_tokens=u.cache_read_input_tokens or 0)
        if meter is not None:
            meter.add(usage)
        return Completion(text=text, tool_calls=calls, usage=usage,
                          stop_reason=STOP.get(final.stop_reason or "", final.stop_reason or "stop"),
                          model=self.model, provider=self.name)

    @property
    def client(self) -> Any:
        """The SDK client, made (and the SDK imported) on first use."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()


class _Seen:
    """The usage of one streamed request as far as it got: `message_start` reports the input (and
    cache) tokens, `message_delta` the output so far; text and tool-input deltas that arrived after
    the last report are estimated, so an aborted stream is charged at least for what it produced."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.reported_output = 0
        self.estimated_output = 0

    def start(self, u) -> None:
        if u is None:
            return
        self.usage = Usage(input_tokens=u.input_tokens or 0, output_tokens=0,
                           cache_write_tokens=u.cache_creation_input_tokens or 0,
                           cache_read_tokens=u.cache_read_input_tokens or 0)
        self.reported_output = u.output_tokens or 0

    def delta(self, u) -> None:
        if u is not None and u.output_tokens:
            self.reported_output = max(self.reported_output, u.output_tokens)

    def output(self, piece: str) -> None:
        if piece:
            self.estimated_output += estimate_tokens(piece)

    def charge(self, meter: Usage | None) -> None:
        if meter is None:
            return
        self.usage.output_tokens = max(self.reported_output, self.estimated_output)
        meter.add(self.usage)
        self.usage = Usage()  # charged once
        self.reported_output = self.estimated_output = 0
