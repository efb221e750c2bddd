"""The local provider: SGLang's OpenAI-compatible API, streamed over plain httpx (server-sent events).

The openai SDK is not used on this path: it builds a pydantic model per streamed chunk through a
generic, reflection-heavy `construct_type`, measured at ~0.2 ms of CPU per token (about 50 ms of a
256-token turn) against ~0.02 ms for `json.loads` of the same chunk. The wire format is small and
fixed (`data: {json}` events, `data: [DONE]`), so the hub reads it itself.

Tool calls arrive as `delta.tool_calls[i]` pieces (index, id, function.name, function.arguments)
that are concatenated per index; a `[TOOL_CALLS]` text leaking into `content` is held back from
the user and parsed into calls (`hub.llm.toolcalls`). The SDK's own retries are off: retries,
deadlines and error types are ours (`hub.llm.base`); HTTP statuses map to them in `map_status`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import string
from collections.abc import AsyncIterator
from typing import Any

import httpx2

from hub.llm.base import Provider
from hub.llm.errors import AuthFailed, BadRequest, LLMError, ProviderUnavailable, RateLimited
from hub.llm.pricing import estimate_tokens
from hub.llm.retry import retry_after_from
from hub.llm.toolcalls import MARKER, LeakGuard, new_call_id, parse_leaked
from hub.llm.types import Completion, Message, OnText, ToolCall, ToolSpec, Usage

DRAIN_S = 0.5  # how long the end of a response is awaited after `[DONE]` (see `drain`)
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


def map_status(provider: str, status: int, headers: Any, body: bytes) -> LLMError:
    """An HTTP error answer as one of our error types (what the SDK's exception classes meant)."""
    message = _message(body)
    if status == 429:
        return RateLimited(provider, f"rate limited (429): {message}", retry_after=retry_after_from(headers))
    if status in (401, 403):
        return AuthFailed(provider, f"the server refused our API key ({status})")
    if status >= 500 or status == 408:
        return ProviderUnavailable(provider, f"server error {status}: {message}", retry_after=retry_after_from(headers))
    return BadRequest(provider, f"request refused ({status}): {message}")


def map_transport_error(provider: str, exc: Exception) -> LLMError:
    if isinstance(exc, httpx2.TimeoutException):
        return ProviderUnavailable(provider, "the HTTP request timed out")
    if isinstance(exc, httpx2.HTTPError):
        return ProviderUnavailable(provider, f"connection failed ({type(exc).__name__})")
    return ProviderUnavailable(provider, f"{type(exc).__name__}: {exc}")


def _message(body: bytes) -> str:
    try:
        value = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:300] or "no details"
    if isinstance(value, dict):
        error = value.get("error")
        if isinstance(error, dict):
            value = error
        return str(value.get("message") or value.get("error") or value)[:300]
    return str(value)[:300]


async def sse_data(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The `data` of each server-sent event (multi-line data joined with newlines), until `[DONE]`.

    Works on the raw bytes as they arrive, however the network splits them: events are cut at blank
    lines and only `data` fields are kept (comments, `event`, `id`, `retry` are not used by SGLang).
    Decoding lines to `str` one by one (httpx's `aiter_lines`) cost more than the JSON parse itself."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):  # a CRLF split across chunks: wait for its LF
                continue
            buffer = buffer.replace(b"\r\n", b"\n")
        while True:
            cut = buffer.find(b"\n\n")
            if cut < 0:
                break
            event, buffer = buffer[:cut], buffer[cut + 2:]
            data = _event_data(event)
            if data is None:
                continue
            if data == b"[DONE]":
                return
            yield data
    data = _event_data(buffer.replace(b"\r", b"\n"))
    if data is not None and data != b"[DONE]":
        yield data


async def drain(chunks: AsyncIterator[bytes], within_s: float = DRAIN_S) -> bool:
    """Read what is left of a response after `[DONE]` (the chunked body's last, empty chunk), so
    its connection goes back to the pool; True when the body ended.

    Leaving the body unread made httpx close the connection, and every call paid a new TCP connect
    (and its task group) again: ~0.4 ms of CPU per chat turn in `sovhub bench turn`.
    A server that keeps the response open after `[DONE]` is given `within_s`; then the connection
    is dropped as before, never the answer."""
    try:
        async with asyncio.timeout(within_s):
            async for _ in chunks:
                pass
    except TimeoutError:
        return False
    return True


def _event_data(event: bytes) -> bytes | None:
    if event.startswith(b"data: ") and b"\n" not in event:  # the usual one-line event
        return event[6:]
    data = [line[6:] if line.startswith(b"data: ") else line[5:]
            for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(data) if data else None


class LocalProvider(Provider):
    name = "local"

    def __init__(self, *, base_url: str, model: str, api_key: str | None = None, first_token_timeout_s: float = 600,
                 stall_timeout_s: float = 60, max_retries: int = 2, **kw: Any) -> None:
        super().__init__(model=model, first_token_timeout_s=first_token_timeout_s,
                         stall_timeout_s=stall_timeout_s, max_retries=max_retries, **kw)
        read = max(first_token_timeout_s, stall_timeout_s) + 5
        self.base_url = base_url
        self._client: Any = None
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key or 'EMPTY'}", "Accept": "text/event-stream"}
        self._make_client = lambda: httpx2.AsyncClient(timeout=httpx2.Timeout(read, connect=10.0))

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
        try:
            async with deadline.guard(), self.client.stream("POST", self._url, json=kwargs,
                                                            headers=self._headers) as response:
                if response.status_code >= 400:
                    raise map_status(self.name, response.status_code, response.headers, await response.aread())
                raw = response.aiter_raw()
                loads, now = json.loads, deadline.now
                # per event (a token each): the checks the common content chunk needs, in its order;
                # the deadline and the leak guard are tested inline and called only when they act
                async for data in sse_data(raw):
                    chunk = loads(data.decode())  # str: skips json's per-call encoding detection
                    if not isinstance(chunk, dict):
                        continue
                    u = chunk.get("usage")
                    if u:
                        usage = Usage(input_tokens=u.get("prompt_tokens") or 0,
                                      output_tokens=u.get("completion_tokens") or 0)
                    choices = chunk.get("choices")
                    if not choices:
                        error = chunk.get("error")
                        if error:
                            raise ProviderUnavailable(self.name, "the server reported an error mid-stream: "
                                                      + _message(json.dumps(error).encode())
                                                      if isinstance(error, dict) else str(error)[:300])
                        continue
                    choice = choices[0]
                    delta = choice.get("delta") or {}
                    content = delta.get("content")
                    if content:
                        if now() >= deadline.due:
                            deadline.tick()
                        parts.append(content)
                        # LeakGuard.feed passes a piece through unchanged unless it holds text back
                        safe = guard.feed(content) if guard.pending or guard.tripped or "[" in content else content
                        if safe:
                            shown.append(safe)
                            await on_text(safe)
                    tool_calls = delta.get("tool_calls")
                    if tool_calls:
                        deadline.tick()
                        for tc in tool_calls:
                            slot = slots.setdefault(tc.get("index", 0), ["", "", ""])
                            if tc.get("id"):
                                slot[0] = tc["id"]
                            function = tc.get("function")
                            if function:
                                slot[1] += function.get("name") or ""
                                slot[2] += function.get("arguments") or ""
                    if choice.get("finish_reason"):
                        finish = FINISH.get(choice["finish_reason"], choice["finish_reason"])
                await drain(raw)
        except LLMError as exc:
            exc.partial = "".join(shown)
            raise
        except (httpx2.HTTPError, ValueError) as exc:
            error = map_transport_error(self.name, exc) if isinstance(exc, httpx2.HTTPError) else \
                ProviderUnavailable(self.name, f"the server sent a malformed stream ({exc})")
            error.partial = "".join(shown)
            raise error from exc
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
        """The HTTP client (one connection pool), made on first use."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
