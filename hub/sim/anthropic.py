"""An Anthropic Messages API stand-in (`POST /v1/messages`), streaming and not, on a real socket.

The SSE sequence is the API's: message_start, content_block_start, ping, content_block_delta
(text_delta / input_json_delta), content_block_stop, message_delta (stop_reason + usage),
message_stop; `error` events for mid-stream failures. Errors use the API's JSON shape
`{"type": "error", "error": {"type", "message"}, "request_id"}`.
Prompt caching is simulated: every `cache_control` block is a breakpoint; the first request with
a prefix creates the cache (`cache_creation_input_tokens`), later requests with the same prefix
read it (`cache_read_input_tokens`) for `cache_ttl` seconds. `min_cache_tokens` (default 0) mimics
the API's minimum cacheable length. The "model" is `hub.sim.responder.Responder`.
`GET /_sim/stats` counts requests (tests assert on it); `POST /_sim/script`, `/_sim/faults` steer it.
`tool_choice` (auto / any / tool / none, `disable_parallel_tool_use`) and image blocks (base64 or
url sources) are checked as the API checks them (400 naming the field) and `tool_choice` is obeyed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import secrets
import string
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from hub.sim.control import script_and_fault_routes
from hub.sim.faults import BrokenResponse, Fault, FaultBook, SimDisconnect
from hub.sim.responder import Prompt, Reply, Responder, ToolCall, estimate_tokens

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}
ERROR_MESSAGES = {
    "rate_limit_error": "Number of requests has exceeded your rate limit.",
    "overloaded_error": "Overloaded",
    "api_error": "Internal server error",
}


def _rand(prefix: str, n: int = 22) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(n))


class AnthropicSim:
    def __init__(
        self,
        *,
        api_key: str | None = None,
        tokens_per_s: float = 0.0,
        first_token_delay: float = 0.0,
        script: list[dict] | None = None,
        faults: list[dict] | None = None,
        cache_ttl: float = 300.0,
        min_cache_tokens: int = 0,
    ) -> None:
        self.api_key = api_key
        self.tokens_per_s = float(tokens_per_s)
        self.first_token_delay = float(first_token_delay)
        self.cache_ttl = float(cache_ttl)
        self.min_cache_tokens = int(min_cache_tokens)
        self.responder = Responder(script)
        self.faults = FaultBook()
        self.faults.update({"add": faults or []})
        self.cache: dict[str, float] = {}  # prefix hash -> expiry (monotonic)
        self.stats: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.last_request: dict[str, Any] | None = None

    def cache_usage(self, body: dict[str, Any]) -> tuple[int, int, int]:
        """(uncached input, cache creation, cache read) tokens for this request's prefix."""
        segments: list[tuple[Any, bool]] = []
        for tool in body.get("tools") or []:
            segments.append((tool, "cache_control" in tool))
        system = body.get("system")
        if isinstance(system, str):
            segments.append((system, False))
        for block in system if isinstance(system, list) else []:
            segments.append((block, "cache_control" in block))
        for message in body.get("messages") or []:
            content = message.get("content")
            if isinstance(content, str):
                segments.append(({"role": message.get("role"), "text": content}, False))
                continue
            for block in content or []:
                segments.append(({"role": message.get("role"), **block}, "cache_control" in block))
        total, digest = 0, hashlib.sha256()
        breakpoints: list[tuple[int, str]] = []
        for segment, marked in segments:
            clean = (
                {k: v for k, v in segment.items() if k != "cache_control"}
                if isinstance(segment, dict)
                else segment
            )
            total += estimate_tokens(clean)
            digest.update(json.dumps(clean, sort_keys=True, default=str).encode())
            if marked and total >= self.min_cache_tokens:
                breakpoints.append((total, digest.hexdigest()))
        now = time.monotonic()
        self.cache = {h: exp for h, exp in self.cache.items() if exp > now}
        read = max((t for t, h in breakpoints if h in self.cache), default=0)
        last = breakpoints[-1][0] if breakpoints else 0
        for _, h in breakpoints:
            self.cache[h] = now + self.cache_ttl
        creation = max(0, last - read)
        return total - read - creation, creation, read


def prompt_from_anthropic(body: dict[str, Any]) -> Prompt:
    messages = body.get("messages") or []
    names: dict[str, str] = {}
    for m in messages:
        for block in m.get("content") if isinstance(m.get("content"), list) else []:
            if block.get("type") == "tool_use":
                names[block.get("id", "")] = block.get("name", "")
    results: list[tuple[str, str]] = []
    last_user = ""
    if messages and messages[-1].get("role") == "user" and isinstance(messages[-1].get("content"), list):
        for block in messages[-1]["content"]:
            if block.get("type") == "tool_result":
                content = block.get("content", "")
                if isinstance(content, list):
                    content = "".join(b.get("text", "") for b in content if b.get("type") == "text")
                prefix = "error: " if block.get("is_error") else ""
                results.append(
                    (
                        names.get(block.get("tool_use_id", ""), block.get("tool_use_id", "")),
                        prefix + str(content),
                    )
                )
    for m in reversed(messages):
        if m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            last_user = content
            break
        texts = [b.get("text", "") for b in content or [] if b.get("type") == "text"]
        if texts:
            last_user = "".join(texts)
            break
    tools = [t.get("name", "") for t in body.get("tools") or []]
    return Prompt(last_user_text=last_user, tool_results=results, tool_names=tools)


IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
CHOICES = ("auto", "any", "tool", "none")


def invalid(body: dict[str, Any]) -> str | None:
    """What the Messages API rejects with 400 among `tool_choice` and image blocks (None: fine)."""
    choice = body.get("tool_choice")
    tools = [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)]
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in CHOICES:
            return "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
        if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
            return "tool_choice.tool.name: Field required"
        if choice["type"] in ("any", "tool") and not tools:
            return "tool_choice may only be specified while providing tools"
        if choice["type"] == "tool" and choice["name"] not in tools:
            return f"Tool '{choice['name']}' not found in provided tools"
    for i, m in enumerate(body.get("messages") or []):
        content = m.get("content") if isinstance(m, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else []):
            if not isinstance(block, dict) or block.get("type") != "image":
                continue
            where = f"messages.{i}.content.{j}.image.source"
            source = block.get("source")
            kind = source.get("type") if isinstance(source, dict) else None
            if kind == "base64":
                if source.get("media_type") not in IMAGE_TYPES:
                    return f"{where}.base64.media_type: Input should be {', '.join(map(repr, IMAGE_TYPES))}"
                try:
                    base64.b64decode(source.get("data") or "", validate=True)
                except (binascii.Error, ValueError):
                    return f"{where}.base64: The image data is not valid base64"
                if not source.get("data"):
                    return f"{where}.base64.data: Field required"
            elif kind == "url":
                if not str(source.get("url") or "").startswith(("http://", "https://")):
                    return f"{where}.url.url: an http(s) URL is required"
            else:
                return f"{where}: Input tag {kind!r} does not match any of the expected tags: 'base64', 'url'"
    return None


def apply_tool_choice(body: dict[str, Any], prompt: Prompt, reply_of) -> Reply:
    """`none` offers no tools; `any`/`tool` make the reply a tool call (the named tool, else the first
    offered), with the arguments the markers gave it or `{}`."""
    choice = body.get("tool_choice") or {"type": "auto"}
    if choice["type"] == "none":
        prompt.tool_names = []
    reply = reply_of(prompt)
    if choice["type"] in ("any", "tool"):
        name = choice.get("name") or prompt.tool_names[0]
        calls = [c for c in reply.tool_calls if choice["type"] == "any" or c.name == name]
        reply = Reply(tool_calls=calls or [ToolCall(name, {})])
    if choice.get("disable_parallel_tool_use"):
        reply.tool_calls = reply.tool_calls[:1]
    return reply


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def create_app(**options: Any) -> Starlette:
    sim = AnthropicSim(**options)

    def error(
        status: int, message: str | None = None, headers: dict | None = None, err_type: str | None = None
    ) -> JSONResponse:
        err_type = err_type or ERROR_TYPES.get(status, "api_error")
        request_id = _rand("req_011C", 20)
        body = {
            "type": "error",
            "error": {"type": err_type, "message": message or ERROR_MESSAGES.get(err_type, err_type)},
            "request_id": request_id,
        }
        sim.by_status[status] += 1
        return JSONResponse(body, status_code=status, headers={"request-id": request_id, **(headers or {})})

    def fault_response(fault: Fault) -> JSONResponse:
        headers = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
        msg = None if fault.message == "simulated failure" else fault.message
        return error(fault.status, msg, headers, fault.error_type)

    async def messages(request: Request) -> Response:
        sim.stats["requests"] += 1
        if sim.api_key is not None:
            key = request.headers.get("x-api-key")
            bearer = request.headers.get("authorization", "")
            if key is None and bearer.lower().startswith("bearer "):
                key = bearer[len("bearer ") :]
            if key is None:
                return error(401, "x-api-key header is required")
            if key != sim.api_key:
                return error(401, "invalid x-api-key")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return error(400, "There was an error parsing the body of your request.")
        for field in ("model", "max_tokens", "messages"):
            if not isinstance(body, dict) or field not in body:
                return error(400, f"{field}: Field required")
        sim.last_request = body
        if fault := sim.faults.take("status"):
            return fault_response(fault)
        if why := invalid(body):
            return error(400, why)
        prompt = prompt_from_anthropic(body)
        reply = apply_tool_choice(body, prompt, sim.responder.reply)
        uncached, creation, read = sim.cache_usage(body)
        turn = _Turn(sim, body, reply, (uncached, creation, read))
        sim.by_status[200] += 1
        if body.get("stream"):
            sim.stats["streamed"] += 1
            return StreamingResponse(
                turn.stream(), media_type="text/event-stream", headers={"request-id": turn.request_id}
            )
        return await turn.respond()

    async def count_tokens(request: Request) -> Response:
        body = await request.json()
        return JSONResponse({"input_tokens": sum(sim.cache_usage(body))})

    async def sim_config(request: Request) -> Response:
        body = await request.json()
        for key in ("tokens_per_s", "first_token_delay", "cache_ttl"):
            if key in body:
                setattr(sim, key, float(body[key]))
        return JSONResponse({"tokens_per_s": sim.tokens_per_s, "first_token_delay": sim.first_token_delay})

    async def sim_stats(request: Request) -> Response:
        return JSONResponse(
            {
                "requests": sim.stats["requests"],
                "streamed": sim.stats["streamed"],
                "by_status": {str(k): v for k, v in sim.by_status.items()},
                "last_request": sim.last_request,
                "cached_prefixes": len(sim.cache),
            }
        )

    async def sim_reset(request: Request) -> Response:
        sim.stats.clear()
        sim.by_status.clear()
        sim.cache.clear()
        sim.last_request = None
        return JSONResponse({"ok": True})

    routes = [
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        *script_and_fault_routes(sim),
        Route("/_sim/config", sim_config, methods=["POST"]),
        Route("/_sim/stats", sim_stats),
        Route("/_sim/reset", sim_reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.sim = sim
    return app


class _Turn:
    def __init__(
        self, sim: AnthropicSim, body: dict[str, Any], reply: Reply, usage: tuple[int, int, int]
    ) -> None:
        self.sim, self.body, self.reply = sim, body, reply
        self.input_tokens, self.cache_creation, self.cache_read = usage
        self.id = _rand("msg_01")
        self.request_id = _rand("req_011C", 20)
        self.stall = sim.faults.take("stall")
        self.drop = sim.faults.take("disconnect")
        self.error_event = sim.faults.take("error_event")
        self.first = 0.0

    def _plan(self) -> tuple[list[str], list[dict], str]:
        pieces = self.reply.text_tokens()
        stop = "end_turn"
        max_tokens = int(self.body.get("max_tokens") or 0)
        if max_tokens and len(pieces) > max_tokens:
            pieces, stop = pieces[:max_tokens], "max_tokens"
        tools = [
            {"type": "tool_use", "id": _rand("toolu_01"), "name": c.name, "input": c.arguments}
            for c in self.reply.tool_calls
        ]
        if tools and stop != "max_tokens":
            stop = "tool_use"
        return pieces, tools, stop

    def _usage(self, output: int) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation,
            "cache_read_input_tokens": self.cache_read,
            "output_tokens": output,
            "service_tier": "standard",
        }

    def _message(self, content: list[dict], stop: str | None, output: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.body["model"],
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": self._usage(output),
        }

    async def _pace(self, emitted: int) -> str | None:
        """Sleeps to the token rate; returns an SSE error event when an error fault fires here."""
        if self.stall and emitted == self.stall.after_tokens:
            await asyncio.sleep(self.stall.seconds)
        if self.drop and emitted == self.drop.after_tokens:
            raise SimDisconnect("simulated disconnect")
        if self.error_event and emitted == self.error_event.after_tokens:
            err_type = self.error_event.error_type or "overloaded_error"
            return _sse(
                "error",
                {
                    "type": "error",
                    "error": {"type": err_type, "message": ERROR_MESSAGES.get(err_type, err_type)},
                },
            )
        if self.sim.tokens_per_s > 0:
            delay = self.first + emitted / self.sim.tokens_per_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        return None

    async def stream(self) -> AsyncIterator[str]:
        pieces, tools, stop = self._plan()
        if self.sim.first_token_delay:
            await asyncio.sleep(self.sim.first_token_delay)
        self.first = time.monotonic()
        yield _sse("message_start", {"type": "message_start", "message": self._message([], None, 1)})
        index, emitted = 0, 0
        blocks: list[tuple[dict, list[tuple[str, dict]]]] = []
        if pieces:
            blocks.append(
                ({"type": "text", "text": ""}, [("text", {"type": "text_delta", "text": p}) for p in pieces])
            )
        for tool in tools:
            arguments = json.dumps(tool["input"])
            parts = [arguments[i : i + 8] for i in range(0, len(arguments), 8)]
            deltas = [("json", {"type": "input_json_delta", "partial_json": ""})]
            deltas += [("json", {"type": "input_json_delta", "partial_json": p}) for p in parts]
            blocks.append(({**tool, "input": {}}, deltas))
        for start, deltas in blocks:
            yield _sse(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": start}
            )
            if index == 0:
                yield _sse("ping", {"type": "ping"})
            for _, delta in deltas:
                if err := await self._pace(emitted):
                    yield err
                    return
                yield _sse(
                    "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
                )
                emitted += 1
            yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        if err := await self._pace(emitted):
            yield err
            return
        yield _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": self._usage(emitted),
            },
        )
        yield _sse("message_stop", {"type": "message_stop"})

    async def respond(self) -> Response:
        pieces, tools, stop = self._plan()
        if self.sim.first_token_delay:
            await asyncio.sleep(self.sim.first_token_delay)
        self.first = time.monotonic()
        total = len(pieces) + len(tools)
        for emitted in range(total):
            try:
                failed = await self._pace(emitted)
            except SimDisconnect:
                return BrokenResponse()
            if failed:
                err_type = self.error_event.error_type or "overloaded_error"
                return JSONResponse(
                    {"type": "error", "error": {"type": err_type, "message": "Overloaded"}}, status_code=529
                )
        content = ([{"type": "text", "text": "".join(pieces)}] if pieces else []) + tools
        return JSONResponse(self._message(content, stop, total), headers={"request-id": self.request_id})
