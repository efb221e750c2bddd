"""Pure translations between the OpenAI chat format, the hub's provider-neutral types and SSE.

Used where the gateway answers an OpenAI client from the cloud provider (`model: claude`): the
client's messages (text, and images in user messages as data: or http(s) URLs), tools and
tool_choice become `hub.llm.types`, the Completion comes back as OpenAI chunks.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from hub.errors import HubError
from hub.llm.types import Completion, Image, Message, ToolCall, ToolChoice, ToolSpec, Usage

FINISH = {"stop": "stop", "tool_calls": "tool_calls", "length": "length"}


class BadInput(HubError):
    """The client's request cannot be translated; answered with 400 and this message."""


def sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def comment(text: str) -> bytes:
    """An SSE comment line: clients ignore it, proxies see traffic, so the connection is kept."""
    return b": " + text.replace("\n", " ").encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")  # what Claude reads


def _text(content: Any, where: str) -> str:
    text, images = _parts(content, where)
    if images:
        raise BadInput(f"{where}: images can only be sent in user messages")
    return text


def _parts(content: Any, where: str) -> tuple[str, list[Image]]:
    """The text and the images of an OpenAI content value (a string or a list of parts)."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise BadInput(f"{where}: content must be a string or a list of parts")
    texts: list[str] = []
    images: list[Image] = []
    for k, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
        if kind == "text":
            texts.append(str(part.get("text") or ""))
        elif kind == "image_url":
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            images.append(to_image(url, f"{where}.content[{k}].image_url.url"))
        else:
            raise BadInput(f"{where}: the cloud model reads text and image_url parts (got {kind!r})")
    return "".join(texts), images


def to_image(url: Any, where: str) -> Image:
    """A `data:<type>;base64,...` URL -> an inline image; an http(s) URL -> an image by URL."""
    if not isinstance(url, str) or not url:
        raise BadInput(f"{where}: a data: or http(s) URL is required")
    if url.startswith(("http://", "https://")):
        return Image(url=url)
    if not url.startswith("data:"):
        raise BadInput(f"{where}: only data: and http(s) image URLs can be sent to the cloud model")
    head, comma, data = url[5:].partition(",")
    media_type, _, encoding = head.partition(";")
    if not comma or encoding.lower() != "base64":
        raise BadInput(f"{where}: a data: URL must be base64 (data:image/png;base64,...)")
    if media_type.lower() not in IMAGE_TYPES:
        raise BadInput(f"{where}: {media_type or 'no media type'} is not an image type Claude reads "
                       f"({', '.join(IMAGE_TYPES)})")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"{where}: the data: URL is not valid base64") from None
    if not data:
        raise BadInput(f"{where}: the data: URL holds no data")
    return Image(media_type=media_type.lower(), data=data)


def to_tool_choice(raw: Any, tools: list[ToolSpec], parallel: Any = None) -> ToolChoice | None:
    """OpenAI `tool_choice` (auto, none, required, {"type": "function", "function": {"name": ...}}) and
    `parallel_tool_calls` -> a ToolChoice (None: neither was given)."""
    if raw is None and parallel is None:
        return None
    if raw is None:
        choice = ToolChoice("auto")
    elif raw in ("auto", "none", "required"):
        choice = ToolChoice(raw)
    elif isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("function"), dict) \
            and isinstance(raw["function"].get("name"), str):
        choice = ToolChoice("tool", raw["function"]["name"])
    else:
        raise BadInput("tool_choice: expected 'auto', 'none', 'required' or "
                       "{'type': 'function', 'function': {'name': ...}}")
    if choice.mode in ("required", "tool") and not tools:
        raise BadInput(f"tool_choice: {raw!r} needs tools")
    if choice.mode == "tool" and choice.name not in {t.name for t in tools}:
        raise BadInput(f"tool_choice: no tool named {choice.name!r} in tools")
    if parallel is not None and not isinstance(parallel, bool):
        raise BadInput("parallel_tool_calls: must be true or false")
    return ToolChoice(choice.mode, choice.name, parallel is not False)


def to_messages(raw: Any) -> list[Message]:
    """OpenAI chat messages -> hub Messages (system/developer, user, assistant with tool_calls, tool)."""
    if not isinstance(raw, list) or not raw:
        raise BadInput("messages: a non-empty list is required")
    out: list[Message] = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise BadInput(f"messages[{i}]: must be an object")
        role = m.get("role")
        where = f"messages[{i}]"
        if role in ("system", "developer"):
            out.append(Message("system", _text(m.get("content"), where)))
        elif role == "user":
            text, images = _parts(m.get("content"), where)
            out.append(Message("user", text, images=images))
        elif role == "assistant":
            calls = []
            for j, c in enumerate(m.get("tool_calls") or []):
                fn = c.get("function") or {}
                raw_args = fn.get("arguments") or "{}"
                try:
                    args = json.loads(raw_args)
                except json.JSONDecodeError:
                    raise BadInput(f"{where}.tool_calls[{j}].function.arguments: not JSON") from None
                calls.append(ToolCall(str(c.get("id") or f"call_{i}_{j}"), str(fn.get("name") or ""),
                                      args if isinstance(args, dict) else {}))
            out.append(Message("assistant", _text(m.get("content"), where), tool_calls=calls))
        elif role == "tool":
            out.append(Message("tool", _text(m.get("content"), where), tool_call_id=str(m.get("tool_call_id") or "")))
        else:
            raise BadInput(f"{where}.role: {role!r} is not one of system, developer, user, assistant, tool")
    return out


def to_tools(raw: Any) -> list[ToolSpec]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadInput("tools: must be a list")
    out = []
    for i, t in enumerate(raw):
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(fn, dict) or not fn.get("name"):
            raise BadInput(f"tools[{i}]: expected {{'type': 'function', 'function': {{'name': ...}}}}")
        out.append(ToolSpec(str(fn["name"]), str(fn.get("description") or ""),
                            fn.get("parameters") or {"type": "object", "properties": {}}))
    return out


def tool_calls_wire(calls: list[ToolCall], *, indexed: bool) -> list[dict[str, Any]]:
    out = []
    for i, c in enumerate(calls):
        item: dict[str, Any] = {"id": c.id, "type": "function",
                                "function": {"name": c.name, "arguments": c.raw_arguments or json.dumps(c.arguments)}}
        if indexed:
            item["index"] = i
        out.append(item)
    return out


def usage_wire(c: Completion) -> dict[str, int]:
    u = c.usage
    prompt = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
    return {"prompt_tokens": prompt, "completion_tokens": u.output_tokens, "total_tokens": prompt + u.output_tokens}


def chunk(rid: str, model: str, delta: dict[str, Any], finish: str | None = None,
          created: int | None = None) -> dict[str, Any]:
    return {"id": rid, "object": "chat.completion.chunk", "created": created or int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def final_chunks(rid: str, model: str, c: Completion, *, include_usage: bool) -> list[dict[str, Any]]:
    """The chunks after the streamed text: the tool calls, the finish reason, and usage when asked."""
    out = []
    if c.tool_calls:
        out.append(chunk(rid, model, {"tool_calls": tool_calls_wire(c.tool_calls, indexed=True)}))
    out.append(chunk(rid, model, {}, FINISH.get(c.stop_reason, "stop")))
    if include_usage:
        out.append({"id": rid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                    "choices": [], "usage": usage_wire(c)})
    return out


def completion_body(rid: str, model: str, c: Completion) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": c.text or None}
    if c.tool_calls:
        message["tool_calls"] = tool_calls_wire(c.tool_calls, indexed=False)
    return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": FINISH.get(c.stop_reason, "stop")}],
            "usage": usage_wire(c)}


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def anthropic_error(message: str, kind: str = "permission_error") -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


USAGE_MARKS = (b'"usage":{', b'"usage": {')


class LocalEvents:
    """The local model's SSE events on their way to the client, fed as the bytes arrive.

    Whole events are forwarded as they complete (a piece of one waits for the rest), unchanged: only
    an event that carries a usage object is parsed, for the ledger, and dropped when it has no
    choices and the client did not ask for usage. The model's own `data: [DONE]` is noted, so no
    second one is added. Bytes that hold only whole events and no usage pass as they are."""

    __slots__ = ("_buf", "done", "show_usage", "usage")

    def __init__(self, show_usage: bool) -> None:
        self.show_usage = show_usage
        self.usage = Usage()
        self.done = False
        self._buf = b""

    def feed(self, raw: bytes) -> bytes:
        buf = self._buf + raw if self._buf else raw
        if buf.endswith(b"\n\n") and USAGE_MARKS[0] not in buf and USAGE_MARKS[1] not in buf:
            self._buf = b""  # the common case: whole events, nothing to read
            if buf == DONE or buf.endswith(b"\n" + DONE):
                self.done = True
            return buf
        out = []
        start = 0
        while (i := buf.find(b"\n\n", start)) >= 0:
            event = buf[start:i + 2]
            start = i + 2
            if USAGE_MARKS[0] in event or USAGE_MARKS[1] in event:
                data = self._usage(event)
                if data is not None and not self.show_usage and not data.get("choices"):
                    continue
            elif event == DONE:
                self.done = True
            out.append(event)
        self._buf = buf[start:]
        return b"".join(out)

    def rest(self) -> bytes:
        """What is left when the stream ends (an event without its blank line), forwarded as it is."""
        rest, self._buf = self._buf, b""
        return rest

    def _usage(self, event: bytes) -> dict[str, Any] | None:
        try:
            data = json.loads(event[event.index(b"data:") + 5:])
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        raw = data.get("usage")
        if isinstance(raw, dict):
            try:
                self.usage = Usage(input_tokens=int(raw.get("prompt_tokens") or 0),
                                   output_tokens=int(raw.get("completion_tokens") or 0))
            except (TypeError, ValueError):
                pass
        return data
