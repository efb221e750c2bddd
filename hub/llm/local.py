"""The local provider: SGLang's OpenAI-compatible API through the `openai` SDK, streamed.

Tool calls arrive as `delta.tool_calls[i]` pieces (index, id, function.name, function.arguments)
that are concatenated per index; a `[TOOL_CALLS]` text leaking into `content` is held back from
the user and parsed into calls (`hub.llm.toolcalls`). The SDK's own retries are off: retries,
deadlines and error types are ours (`hub.llm.base`).
"""

from __future__ import annotations

import hashlib
import json
import string
from typing import Any

import httpx2

from hub.lazy import lazy_import
from hub.llm.base import Provider
from hub.llm.errors import AuthFailed, BadRequest, LLMError, ProviderUnavailable, RateLimited
from hub.llm.pricing import estimate_tokens
from hub.llm.retry import retry_after_from
from hub.llm.toolcalls import MARKER, LeakGuard, new_call_id, parse_leaked
from hub.llm.types import Completion, Message, OnText, ToolCall, ToolSpec, Usage

openai = lazy_import("openai")  # the SDK loads with the first request, not with the hub

FINISH = {"stop": "stop", "tool_calls": "tool_calls", "length": "length"}


def mistral_id(call_id: str) -> str:
    """Mistral's chat template accepts only 9 alphanumerics as a tool-call id; others (Claude's
    `toolu_...` after a failover, a server's `call_...`) are mapped to a stable 9-character form."""
    if len(call_id) == 9 and call_id.isascii() and call_id.isalnum():
        return call_id
    digest = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    alphabet = string.ascii_letters + string.digits
    chars = []
    for _ in range(9):
        digest, r = divmod(digest, len(alphabet))
        chars.append(alphabet[r])
    return "".join(chars)


def to_openai_messages(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "assistant" and m.tool_calls:
            out.append({"role": "assistant", "content": m.content or None, "tool_calls": [
                {"id": mistral_id(c.id), "type": "function",
                 "function": {"name": c.name, "arguments": c.raw_arguments or json.dumps(c.arguments)}}
                for c in m.tool_calls]})
        elif m.role == "tool":
            out.append({"role": "tool", "tool_call_id": mistral_id(m.tool_call_id or ""), "content": m.content})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def to_openai_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": t.name, "description": t.description,
                                              "parameters": t.parameters}} for t in tools]


def _decode_arguments(raw: str) -> tuple[dict[str, Any], str]:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        return {}, raw
    return (value, "") if isinstance(value, dict) else ({}, raw)


def map_openai_error(provider: str, exc: Exception) -> LLMError:
    if isinstance(exc, openai.RateLimitError):
        return RateLimited(provider, f"rate limited (429): {_message(exc)}",
                           retry_after=retry_after_from(exc.response.headers))
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return AuthFailed(provider, f"the server refused our API key ({exc.status_code})")
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500 or exc.status_code == 408:
            return ProviderUnavailable(provider, f"server error {exc.status_code}: {_message(exc)}",
                                       retry_after=retry_after_from(exc.response.headers))
        return BadRequest(provider, f"request refused ({exc.status_code}): {_message(exc)}")
    if isinstance(exc, openai.APITimeoutError):
        return ProviderUnavailable(provider, "the HTTP request timed out")
    if isinstance(exc, openai.APIConnectionError | httpx2.HTTPError):
        cause = exc.__cause__ or exc
        return ProviderUnavailable(provider, f"connection failed ({type(cause).__name__})")
    return ProviderUnavailable(provider, f"{type(exc).__name__}: {exc}")


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:300]
    return str(body)[:300] if body else exc.message[:300]


class LocalProvider(Provider):
    name = "local"

    def __init__(self, *, base_url: str, model: str, api_key: str | None = None, first_token_timeout_s: float = 600,
                 stall_timeout_s: float = 60, max_retries: int = 2, **kw: Any) -> None:
        super().__init__(model=model, first_token_timeout_s=first_token_timeout_s,
                         stall_timeout_s=stall_timeout_s, max_retries=max_retries, **kw)
        read = max(first_token_timeout_s, stall_timeout_s) + 5
        self.base_url = base_url
        self._client: Any = None
        self._make_client = lambda: openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "EMPTY",
                                                       max_retries=0, timeout=httpx2.Timeout(read, connect=10.0))

    async def _once(self, messages: list[Message], tools: list[ToolSpec], max_tokens: int,
                    on_text: OnText, meter: Usage | None = None) -> Completion:
        kwargs: dict[str, Any] = {"model": self.model, "messages": to_openai_messages(messages),
                                  "max_tokens": max_tokens, "stream": True,
                                  "stream_options": {"include_usage": True}}
        if tools:
            kwargs["tools"] = to_openai_tools(tools)
        parts: list[str] = []
        shown: list[str] = []
        slots: dict[int, list[str]] = {}
        usage: Usage | None = None
        finish = "stop"
        guard = LeakGuard()
        deadline = self.deadline()
        stream = None
        try:
            async with deadline.guard():
                stream = await self.client.chat.completions.create(**kwargs)
                async for chunk in stream:
                    if chunk.usage is not None:
                        usage = Usage(input_tokens=chunk.usage.prompt_tokens or 0,
                                      output_tokens=chunk.usage.completion_tokens or 0)
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    delta = choice.delta
                    if delta.content:
                        deadline.tick()
                        parts.append(delta.content)
                        safe = guard.feed(delta.content)
                        if safe:
                            shown.append(safe)
                            await on_text(safe)
                    if delta.tool_calls:
                        deadline.tick()
                        for tc in delta.tool_calls:
                            slot = slots.setdefault(tc.index, ["", "", ""])
                            if tc.id:
                                slot[0] = tc.id
                            if tc.function is not None:
                                slot[1] += tc.function.name or ""
                                slot[2] += tc.function.arguments or ""
                    if choice.finish_reason:
                        finish = FINISH.get(choice.finish_reason, choice.finish_reason)
        except LLMError as exc:
            exc.partial = "".join(shown)
            raise
        except (openai.OpenAIError, httpx2.HTTPError) as exc:
            error = map_openai_error(self.name, exc)
            error.partial = "".join(shown)
            raise error from exc
        finally:
            if stream is not None:
                await stream.close()
        rest = guard.flush()
        if rest:
            await on_text(rest)
        text = "".join(parts)
        calls = []
        for _, (cid, name, raw) in sorted(slots.items()):
            args, bad = _decode_arguments(raw)
            calls.append(ToolCall(cid or new_call_id(), name, args, raw_arguments=bad))
        if guard.tripped:
            before, leaked = parse_leaked(text)
            if leaked:
                text, finish = before, "tool_calls"
                calls.extend(leaked)
            else:  # unparsable: show what the model said rather than swallow it
                await on_text(text[text.find(MARKER):])
        if usage is None:
            usage = Usage(input_tokens=sum(estimate_tokens(m.content) for m in messages),
                          output_tokens=estimate_tokens(text))
        if meter is not None:
            meter.add(usage)
        return Completion(text=text, tool_calls=calls, usage=usage, stop_reason=finish, model=self.model,
                          provider=self.name)

    @property
    def client(self) -> Any:
        """The SDK client, made (and the SDK imported) on first use."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
