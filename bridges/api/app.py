"""HTTP routes of the gateway: `GET /v1/models`, `POST /v1/chat/completions`, `POST /v1/completions`,
`POST /v1/messages`.

Errors speak each API's own format (OpenAI's `{"error": {...}}`, Anthropic's `{"type": "error"}`),
so the SDKs raise their usual exception types. Requests whose Host header is not this machine get
421 (a web page cannot reach the gateway by DNS rebinding), as on the status page.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from bridges.api.gateway import ROLES_THAT_ASK, Outcome, Refused
from bridges.api.messages import messages as anthropic_messages
from bridges.api.pump import Pump, until_disconnected
from bridges.api.wire import DONE, BadInput, anthropic_error, error_body, sse, to_messages, to_tool_choice, to_tools
from hub.context import Context
from hub.errors import HubError
from hub.net import LOCAL_HOSTS, host_name

if TYPE_CHECKING:
    from bridges.api.gateway import Gateway

def _openai_error(exc: Refused) -> JSONResponse:
    return JSONResponse(error_body(str(exc), exc.kind), status_code=exc.status, headers=exc.headers)


def create_app(gw: Gateway) -> Starlette:
    config = gw.config
    allowed = LOCAL_HOSTS | {config.host.lower()}
    open_bind = config.host in ("0.0.0.0", "::")

    async def who(request: Request, *, asks: bool):
        if not open_bind and host_name(request.headers.get("host", "")) not in allowed:
            raise Refused(421, "misdirected request: unknown Host", "invalid_request_error")
        caller = await gw.caller(request.headers)
        if caller is None:
            raise Refused(401, "a valid API token is required (Authorization: Bearer <token>)",
                          "authentication_error", {"WWW-Authenticate": "Bearer"})
        if asks and caller.role not in ROLES_THAT_ASK:
            raise Refused(403, f"asking a model needs a write token (token {caller.name!r} has role {caller.role})",
                          "permission_error")
        return caller

    async def models(request: Request) -> Response:
        try:
            await who(request, asks=False)
        except Refused as exc:
            return _openai_error(exc)
        now = int(time.time())
        return JSONResponse({"object": "list", "data": [
            {"id": name, "object": "model", "created": now, "owned_by": "sovhub"} for name in gw.model_names()]})

    async def chat_completions(request: Request) -> Response:
        return await answer(request, legacy=False)

    async def completions(request: Request) -> Response:
        return await answer(request, legacy=True)

    async def answer(request: Request, *, legacy: bool) -> Response:
        """`/v1/chat/completions`, or with `legacy` `/v1/completions` (a prompt, not messages), which
        only the local model serves: its body goes to SGLang's own `/v1/completions`."""
        try:
            caller = await who(request, asks=True)
            try:
                body = json.loads(await request.body())
            except ValueError:
                raise Refused(400, "the body is not JSON") from None
            if not isinstance(body, dict):
                raise Refused(400, "the body must be a JSON object")
            target = gw.target(body.get("model"))
            if legacy and target == "cloud":
                raise Refused(400, f"the model {body.get('model')!r} cannot serve legacy completions "
                                   "(/v1/completions); use /v1/chat/completions, or the model `local`",
                              "invalid_request_error")
            if legacy:
                target = "local"  # `auto` too: the local model is the only one that completes a prompt
            ctx, verdict = gw.verdict(caller, Context.new("http", user=caller.name))
            messages = tools = choice = None
            if target in ("cloud", "auto"):
                try:
                    messages, tools = to_messages(body.get("messages")), to_tools(body.get("tools"))
                    choice = to_tool_choice(body.get("tool_choice"), tools, body.get("parallel_tool_calls"))
                except BadInput as exc:
                    if target == "cloud":
                        raise Refused(400, str(exc)) from None
                    target = "local"  # what only the local model understands goes there
            if target == "cloud" and verdict.local_only:
                gw.count(caller.name, "cloud", "refused")
                raise Refused(403, gw.refusal(verdict), "permission_error")
            if target == "auto":
                target = await gw.route_auto(body, verdict, messages, tools)
            if target == "cloud" and (gw.hub.chat is None or gw.hub.chat.cloud is None):
                raise Refused(503, "the hub has no cloud provider configured (llm.cloud)", "server_error")
            if target == "local":
                gw.admit_waiter()
        except Refused as exc:
            return _openai_error(exc)
        outcome = Outcome(route=target, model=gw.hub.config.llm.local.model)
        stream = bool(body.get("stream"))

        async def work(pump: Pump):
            try:
                if target == "local":
                    result = await gw.local_work(pump, body, ctx, caller, outcome,
                                                 "/completions" if legacy else "/chat/completions")
                else:
                    result = await gw.cloud_work(pump, body, ctx, outcome, messages, tools, choice)
            except asyncio.CancelledError:
                gw.count(caller.name, target, "cancelled", outcome.wait_s if target == "local" else None)
                if target == "local":
                    await asyncio.shield(gw.record(ctx, outcome))
                raise
            except Refused as exc:  # e.g. the GPU queue is full: 429, or in the stream once it began
                gw.count(caller.name, target, "refused")
                if not (stream and pump.committed):
                    raise
                pump.emit(sse(error_body(str(exc), exc.kind)))
                return None
            if stream:
                if not outcome.done_sent:  # (the local model's own `[DONE]` was relayed)
                    pump.emit(DONE)  # the client has its answer; the bookkeeping follows
            gw.count(caller.name, target, "ok" if outcome.ok else "failed",
                     outcome.wait_s if target == "local" else None)
            if target == "local":
                if stream:  # the response ends now; the cost row is written beside it
                    gw.later(gw.record(ctx, outcome))
                else:
                    await gw.record(ctx, outcome)
            return result

        pump = Pump(work, waiting_line=lambda: gw.waiting_line(f"api-{ctx.id}"), keepalive_s=config.keepalive_s)
        if stream:
            refused = await pump.opened(min(0.25, config.keepalive_s))
            if isinstance(refused, Refused):
                return _openai_error(refused)
            return StreamingResponse(pump.stream(), media_type="text/event-stream",
                                     headers={"cache-control": "no-cache", "x-accel-buffering": "no"})
        gone = asyncio.ensure_future(until_disconnected(request.receive))
        try:
            await asyncio.wait([pump.task, gone], return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not pump.task.done():  # the client left while waiting: its place in the queue goes too
            await pump.close()
            return Response(status_code=499)
        try:
            status, data, content_type = await pump.finished()
        except Refused as exc:
            return _openai_error(exc)
        except HubError as exc:
            return JSONResponse(error_body(str(exc), "server_error"), status_code=500)
        return Response(data, status_code=status, media_type=content_type)

    async def messages(request: Request) -> Response:
        try:
            caller = await who(request, asks=True)
        except Refused as exc:
            return JSONResponse(anthropic_error(str(exc), exc.kind), status_code=exc.status, headers=exc.headers)
        return await anthropic_messages(gw, request, caller)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    return Starlette(routes=[
        Route("/v1/models", models),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/healthz", healthz),
    ])
