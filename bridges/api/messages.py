"""`POST /v1/messages`: Anthropic's Messages API passed through with the hub's key.

Clients (Claude Code with `ANTHROPIC_BASE_URL`) need no key of their own: the body and the
`anthropic-*` headers go to Anthropic unchanged, the answer comes back unchanged, streamed events
byte for byte. The hub reads a copy of the usage (`message_start`, `message_delta`) to bill the
call in the one ledger, under the spend caps (worst case reserved first, settled after) and behind
the privacy gate: a local-only token is refused before anything is sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from bridges.api.gateway import Outcome
from bridges.api.wire import anthropic_error
from hub.chat.budget import BudgetExceeded, estimate_usd, prompt_tokens_bound
from hub.context import Context
from hub.llm.pricing import cost_usd
from hub.llm.types import Usage
from hub.privacy import CloudRefused

if TYPE_CHECKING:
    from bridges.api.gateway import Gateway
    from bridges.mcp.access import Caller

log = logging.getLogger(__name__)

FORWARDED = ("anthropic-version", "anthropic-beta", "content-type", "accept")


class UsageReader:
    """Reads the usage out of a copy of the SSE stream (or a JSON body) as it passes."""

    def __init__(self) -> None:
        self.usage = Usage()
        self._buf = b""

    def feed(self, data: bytes) -> None:
        self._buf += data
        while (i := self._buf.find(b"\n\n")) >= 0:
            event, self._buf = self._buf[:i], self._buf[i + 2:]
            if b"message_start" in event or b"message_delta" in event:
                for line in event.split(b"\n"):
                    if line.startswith(b"data:"):
                        self._event(line[5:])

    def _event(self, raw: bytes) -> None:
        try:
            data = json.loads(raw)
        except ValueError:
            return
        if data.get("type") == "message_start":
            self.body((data.get("message") or {}).get("usage"))
        elif data.get("type") == "message_delta":
            u = data.get("usage") or {}
            self.usage.output_tokens = max(self.usage.output_tokens, int(u.get("output_tokens") or 0))

    def body(self, u: Any) -> None:
        if isinstance(u, dict):
            self.usage = Usage(input_tokens=int(u.get("input_tokens") or 0),
                               output_tokens=int(u.get("output_tokens") or 0),
                               cache_write_tokens=int(u.get("cache_creation_input_tokens") or 0),
                               cache_read_tokens=int(u.get("cache_read_input_tokens") or 0))


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse(anthropic_error(message, kind), status_code=status)


async def messages(gw: Gateway, request: Request, caller: Caller) -> Response:
    chat = gw.hub.chat
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError:
        return _error(400, "the body is not JSON", "invalid_request_error")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object", "invalid_request_error")
    ctx, verdict = gw.verdict(caller, Context.new("http", user=caller.name))
    if verdict.local_only:
        gw.count(caller.name, "cloud", "refused")
        return _error(403, gw.refusal(verdict), "permission_error")
    if chat is None or chat.cloud is None:
        return _error(503, "the hub has no cloud provider configured (llm.cloud)", "api_error")
    try:
        chat.gate.check(ctx)  # the one privacy gate, as for every cloud call
    except CloudRefused as exc:
        gw.count(caller.name, "cloud", "refused")
        return _error(403, str(exc), "permission_error")
    model = str(body.get("model") or chat.cloud.model)
    prices = gw.hub.config.llm.cloud.prices
    price = prices.get(model) or chat._price()
    worst = estimate_usd(prompt_tokens_bound(raw.decode("utf-8", "replace")), int(body.get("max_tokens") or 0), price)
    try:
        hold = await gw._ledger.reserve(worst, provider="anthropic", model=model, context=ctx, room=None)
    except BudgetExceeded as exc:
        gw.count(caller.name, "cloud", "over budget")
        return _error(429, str(exc), "rate_limit_error")
    client = chat.cloud.client
    headers = {k: v for k, v in request.headers.items() if k in FORWARDED}
    headers.setdefault("anthropic-version", "2023-06-01")
    headers["x-api-key"] = client.api_key
    url = str(client.base_url).rstrip("/") + "/v1/messages"
    outcome = Outcome(route="cloud", model=model)
    reader = UsageReader()
    try:
        upstream = await gw.http.send(gw.http.build_request("POST", url, content=raw, headers=headers), stream=True)
    except httpx.HTTPError as exc:
        await gw._ledger.settle(hold, Usage(), 0.0)
        gw.count(caller.name, "cloud", "failed")
        return _error(502, f"Anthropic cannot be reached ({type(exc).__name__})", "api_error")
    passed = {k: v for k, v in upstream.headers.items()
              if k in ("content-type", "request-id", "retry-after") or k.startswith("anthropic-")}

    async def settle() -> None:
        outcome.usage = reader.usage
        outcome.usd = cost_usd(reader.usage, price)
        gw.count(caller.name, "cloud", "ok" if upstream.status_code == 200 else f"http {upstream.status_code}")
        await asyncio.shield(gw._ledger.settle(hold, reader.usage, outcome.usd))

    if "text/event-stream" not in upstream.headers.get("content-type", ""):
        try:
            data = await upstream.aread()
        finally:
            await upstream.aclose()
        if upstream.status_code == 200:
            try:
                reader.body(json.loads(data).get("usage"))
            except (ValueError, AttributeError):
                pass
        await settle()
        return Response(data, status_code=upstream.status_code, headers=passed)

    async def relay():
        try:
            async for piece in upstream.aiter_raw():
                reader.feed(piece)
                yield piece
        finally:  # the bill first: a client that hung up cancels this generator, and the usage stands
            await settle()
            await upstream.aclose()

    return StreamingResponse(relay(), status_code=upstream.status_code, headers=passed)
