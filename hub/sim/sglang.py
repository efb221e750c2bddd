"""An SGLang stand-in: the OpenAI-compatible API plus SGLang's native endpoints, on a real socket.

Wire shapes follow SGLang's serving_chat (chunk fields `reasoning_content`, `matched_stop`,
first delta `{"role": "assistant", "content": ""}`, usage chunk with empty `choices`, `[DONE]`).
The "model" is `hub.sim.responder.Responder` (scripted replies or prompt markers, see there).
Faults: `hub.sim.faults`. Run it alone with `python -m hub.sim sglang --port N`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from hub.sim.control import script_and_fault_routes
from hub.sim.faults import BrokenResponse, Fault, FaultBook, SimDisconnect
from hub.sim.responder import Prompt, Reply, Responder, estimate_tokens

log = logging.getLogger("sglang.srt")

DEFAULT_MODEL = "mistral-small-4"
DEFAULT_MODEL_PATH = "mistralai/Mistral-Small-4-119B-2603-NVFP4"
VERSION = "0.5.6"
EOS_TOKEN_ID = 2
TTFT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
UNAUTHENTICATED = ("/health", "/metrics", "/_sim/")


class SGLangSim:
    """State of one stand-in server: options, the responder, faults and the metric counters."""

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        model_path: str = DEFAULT_MODEL_PATH,
        tokens_per_s: float = 0.0,
        first_token_delay: float = 0.0,
        load_seconds: float = 0.0,
        api_key: str | None = None,
        script: list[dict] | None = None,
        faults: list[dict] | None = None,
        context_length: int = 131072,
        max_total_num_tokens: int = 262144,
        spec_accept_length: float = 2.6,
        decode_log_interval: int = 40,
    ) -> None:
        self.model = model
        self.model_path = model_path
        self.tokens_per_s = float(tokens_per_s)
        self.first_token_delay = float(first_token_delay)
        self.load_seconds = float(load_seconds)
        self.api_key = api_key
        self.context_length = int(context_length)
        self.max_total_num_tokens = int(max_total_num_tokens)
        self.spec_accept_length = float(spec_accept_length)
        self.decode_log_interval = int(decode_log_interval)
        self.responder = Responder(script)
        self.faults = FaultBook()
        self.faults.update({"add": faults or []})
        self.started_at = time.monotonic()
        self.running = 0
        self.requests = 0
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        self.used_tokens = 0
        self.gen_throughput = 0.0
        self.ttft: list[float] = []
        self.last_request: dict | None = None  # the last chat request's body, as received (tests of proxies)

    # ---- settings changed at run time (POST /_sim/config)
    def configure(self, body: dict[str, Any]) -> None:
        for key in ("tokens_per_s", "first_token_delay", "load_seconds", "spec_accept_length"):
            if key in body:
                setattr(self, key, float(body[key]))
        if body.get("restart_loading"):
            self.started_at = time.monotonic()

    @property
    def loading(self) -> bool:
        return time.monotonic() - self.started_at < self.load_seconds

    def server_args(self, port: int = 30000) -> dict[str, Any]:
        """The launch flags of the GB10 recipe (Mistral Small 4 NVFP4 with EAGLE)."""
        return {
            "model_path": self.model_path,
            "tokenizer_path": self.model_path,
            "served_model_name": self.model,
            "host": "0.0.0.0",
            "port": port,
            "api_key": None if self.api_key is None else "***",
            "tool_call_parser": "mistral",
            "attention_backend": "triton",
            "sampling_backend": "pytorch",
            "mem_fraction_static": 0.8,
            "chunked_prefill_size": 4096,
            "max_running_requests": 8,
            "context_length": self.context_length,
            "quantization": "modelopt_fp4",
            "kv_cache_dtype": "auto",
            "tp_size": 1,
            "dp_size": 1,
            "enable_metrics": True,
            "enable_memory_saver": False,
            "decode_log_interval": self.decode_log_interval,
            "speculative_algorithm": "EAGLE",
            "speculative_draft_model_path": self.model_path + "-eagle",
            "speculative_num_steps": 3,
            "speculative_eagle_topk": 1,
            "speculative_num_draft_tokens": 4,
            "trust_remote_code": True,
        }


# ---------------------------------------------------------------- request -> Prompt
def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def prompt_from_openai(body: dict[str, Any]) -> Prompt:
    messages = body.get("messages") or []
    tools = body.get("tools") or []
    names = [t.get("function", {}).get("name", "") for t in tools if isinstance(t, dict)]
    call_names: dict[str, str] = {}
    for m in messages:
        for tc in m.get("tool_calls") or []:
            call_names[tc.get("id", "")] = tc.get("function", {}).get("name", "")
    results: list[tuple[str, str]] = []
    for m in reversed(messages):
        if m.get("role") != "tool":
            break
        tid = m.get("tool_call_id", "")
        results.insert(0, (call_names.get(tid) or tid, _text_of(m.get("content"))))
    last_user = next((_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    tokens = estimate_tokens(messages) + (estimate_tokens(tools) if tools else 0)
    return Prompt(last_user_text=last_user, tool_results=results, tool_names=names, prompt_tokens=tokens)


def leaked_text(reply: Reply, fmt: str) -> str:
    """What Mistral emits when the server-side tool parser misses the calls."""
    if fmt == "json":
        calls = [{"name": c.name, "arguments": c.arguments} for c in reply.tool_calls]
        return "[TOOL_CALLS]" + json.dumps(calls)
    return "".join(f"[TOOL_CALLS]{c.name}[ARGS]{json.dumps(c.arguments)}" for c in reply.tool_calls)


def _pieces(text: str, size: int = 5) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


# ---------------------------------------------------------------- the app
def create_app(**options: Any) -> Starlette:
    sim = SGLangSim(**options)

    def error(status: int, message: str, err_type: str, headers: dict | None = None) -> JSONResponse:
        body = {"object": "error", "message": message, "type": err_type, "param": None, "code": status}
        return JSONResponse(body, status_code=status, headers=headers)

    def fault_response(fault: Fault) -> JSONResponse:
        headers = {}
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
        err_type = {429: "RateLimitError", 503: "ServiceUnavailableError"}.get(
            fault.status, "InternalServerError"
        )
        return error(fault.status, fault.message, err_type, headers)

    def accept(body: dict) -> Response | None:
        """Both endpoints, once the body is valid: 503 while loading, else the request counts and a
        queued status fault answers it."""
        if sim.loading:
            return error(503, "The server is still loading the model.", "ServiceUnavailableError")
        sim.requests += 1
        sim.last_request = body
        if fault := sim.faults.take("status"):
            return fault_response(fault)
        return None

    async def answer(turn: _Turn) -> Response:
        if turn.body.get("stream"):
            return StreamingResponse(turn.stream(), media_type="text/event-stream")
        return await turn.respond()

    async def chat_completions(request: Request) -> Response:
        try:
            body = await request.json()
        except json.JSONDecodeError as exc:
            return error(400, f"Invalid JSON body: {exc}", "BadRequestError")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return error(400, "messages: field required (a non-empty list)", "BadRequestError")
        if (refused := accept(body)) is not None:
            return refused
        prompt = prompt_from_openai(body)
        if prompt.prompt_tokens >= sim.context_length:
            return error(400, f"The input ({prompt.prompt_tokens} tokens) is longer than the model's context "
                              f"length ({sim.context_length} tokens).", "BadRequestError")
        if body.get("tool_choice") == "none":
            prompt.tool_names = []
        reply = sim.responder.reply(prompt)
        leak = sim.faults.take("leak_tool_calls") if reply.tool_calls else None
        stall = sim.faults.take("stall")
        drop = sim.faults.take("disconnect")
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        ctx = _Turn(sim, body, prompt, reply, leak, stall, drop, max_tokens)
        return await answer(ctx)

    async def completions(request: Request) -> Response:
        """Legacy `/v1/completions`: one prompt (a string, or a list holding one string) -> text."""
        try:
            body = await request.json()
        except json.JSONDecodeError as exc:
            return error(400, f"Invalid JSON body: {exc}", "BadRequestError")
        raw = body.get("prompt") if isinstance(body, dict) else None
        if isinstance(raw, list) and len(raw) == 1:
            raw = raw[0]
        if not isinstance(raw, str):
            return error(400, "prompt: a string is required (the stand-in answers one prompt at a time)",
                         "BadRequestError")
        if (refused := accept(body)) is not None:
            return refused
        prompt = Prompt(last_user_text=raw, prompt_tokens=estimate_tokens(raw))
        reply = sim.responder.reply(prompt)
        reply.tool_calls = []
        ctx = _TextTurn(sim, body, prompt, reply, None, sim.faults.take("stall"), sim.faults.take("disconnect"),
                        body.get("max_tokens"))
        return await answer(ctx)

    async def models(request: Request) -> Response:
        card = {
            "id": sim.model,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "sglang",
            "root": sim.model_path,
            "max_model_len": sim.context_length,
        }
        return JSONResponse({"object": "list", "data": [card]})

    async def health(request: Request) -> Response:
        if sim.faults.health_delay:
            await asyncio.sleep(sim.faults.health_delay)
        if sim.faults.health_status is not None:
            return Response(status_code=sim.faults.health_status)
        return Response(status_code=503 if sim.loading else 200)

    async def ping(request: Request) -> Response:
        return Response(status_code=200)

    async def server_info(request: Request) -> Response:
        info = dict(sim.server_args((request.scope.get("server") or (None, 30000))[1]))
        info.update(
            {
                "internal_states": [
                    {
                        "avg_spec_accept_length": sim.spec_accept_length,
                        "last_gen_throughput": sim.gen_throughput,
                        "memory_usage": {
                            "weight": 66.2,
                            "kvcache": 18.4,
                            "token_capacity": sim.max_total_num_tokens,
                        },
                    }
                ],
                "max_total_num_tokens": sim.max_total_num_tokens,
                "max_req_input_len": sim.context_length - 8,
                "version": VERSION,
            }
        )
        return JSONResponse(info)

    async def model_info(request: Request) -> Response:
        return JSONResponse(
            {
                "model_path": sim.model_path,
                "tokenizer_path": sim.model_path,
                "is_generation": True,
                "preferred_sampling_params": None,
                "weight_version": "default",
                "has_image_understanding": True,
                "has_audio_understanding": False,
                "model_type": "mistral3",
                "architectures": ["Mistral3ForConditionalGeneration"],
            }
        )

    def _load() -> dict[str, Any]:
        return {
            "dp_rank": 0,
            "num_running_reqs": sim.running,
            "num_waiting_reqs": 0,
            "num_used_tokens": sim.used_tokens,
            "max_total_num_tokens": sim.max_total_num_tokens,
            "token_usage": round(sim.used_tokens / sim.max_total_num_tokens, 4),
            "gen_throughput": sim.gen_throughput,
        }

    async def loads(request: Request) -> Response:
        load = _load()
        aggregate = {k: load[k] for k in ("num_running_reqs", "num_waiting_reqs", "num_used_tokens")}
        return JSONResponse(
            {"timestamp": time.time(), "dp_rank_count": 1, "loads": [load], "aggregate": aggregate}
        )

    async def get_load(request: Request) -> Response:
        return JSONResponse([{"num_reqs": sim.running, "num_waiting_reqs": 0, "num_tokens": sim.used_tokens}])

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(render_metrics(sim), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def flush_cache(request: Request) -> Response:
        if sim.running:
            return PlainTextResponse(
                "Cache not flushed. Please check backend logs for more details. "
                "(When there are running or waiting requests, the operation will not be performed.)\n",
                status_code=400,
            )
        log.info("Cache flushed successfully!")
        return PlainTextResponse(
            "Cache flushed.\nPlease check backend logs for more details. "
            "(When there are running or waiting requests, the operation will not be performed.)\n"
        )

    # ---- control endpoints for tests and demos (not part of SGLang)
    async def sim_config(request: Request) -> Response:
        sim.configure(await request.json())
        return JSONResponse(
            {
                "tokens_per_s": sim.tokens_per_s,
                "first_token_delay": sim.first_token_delay,
                "load_seconds": sim.load_seconds,
            }
        )

    async def sim_stats(request: Request) -> Response:
        return JSONResponse(
            {
                "requests": sim.requests,
                "running": sim.running,
                "prompt_tokens_total": sim.prompt_tokens_total,
                "generation_tokens_total": sim.generation_tokens_total,
                "faults": sim.faults.describe(),
            }
        )

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/models", models),
        Route("/health", health),
        Route("/health_generate", health),
        Route("/ping", ping),
        Route("/server_info", server_info),
        Route("/get_server_info", server_info),
        Route("/model_info", model_info),
        Route("/get_model_info", model_info),
        Route("/v1/loads", loads),
        Route("/get_load", get_load),
        Route("/metrics", metrics),
        Route("/flush_cache", flush_cache, methods=["POST", "GET"]),
        *script_and_fault_routes(sim),
        Route("/_sim/config", sim_config, methods=["POST"]),
        Route("/_sim/stats", sim_stats),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        log.info(
            "The server is fired up and ready to roll!"
            if not sim.load_seconds
            else f"Load weight begin. model_path={sim.model_path}"
        )
        yield

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sim = sim
    return _ApiKeyGate(app, sim) if sim.api_key else app


class _ApiKeyGate:
    """`--api-key K`: every endpoint but /health* and /metrics wants `Authorization: Bearer K`."""

    def __init__(self, app: Starlette, sim: SGLangSim) -> None:
        self.app, self.sim, self.state = app, sim, app.state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(UNAUTHENTICATED):
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization", b"").decode() != f"Bearer {self.sim.api_key}":
                await JSONResponse({"error": "Unauthorized"}, status_code=401)(scope, receive, send)
                return
        await self.app(scope, receive, send)


# ---------------------------------------------------------------- one completion
def _finished(finish: str | None) -> dict[str, Any]:
    """The end of a choice, alike in both endpoints: SGLang names the EOS token a `stop` matched."""
    return {"logprobs": None, "finish_reason": finish, "matched_stop": EOS_TOKEN_ID if finish == "stop" else None}


class _Turn:
    """Produces one completion (streamed or whole), pacing tokens and applying faults."""

    def __init__(self, sim, body, prompt, reply, leak, stall, drop, max_tokens) -> None:
        self.sim, self.body, self.prompt, self.reply = sim, body, prompt, reply
        self.leak, self.stall, self.drop = leak, stall, drop
        self.max_tokens = int(max_tokens) if max_tokens else None
        self.id = uuid.uuid4().hex
        self.created = int(time.time())
        self.model = body.get("model") or sim.model

    def _plan(self) -> tuple[list[str], list[dict], str]:
        """Content pieces, tool calls (OpenAI shape) and the finish reason."""
        if self.reply.tool_calls and self.leak:
            return _pieces(leaked_text(self.reply, self.leak.format)), [], "stop"
        pieces = self.reply.text_tokens()
        finish = "stop"
        if self.max_tokens is not None and len(pieces) > self.max_tokens:
            pieces, finish = pieces[: self.max_tokens], "length"
        calls = []
        for i, c in enumerate(self.reply.tool_calls):
            calls.append(
                {
                    "id": c.id or f"call_{uuid.uuid4().hex[:24]}",
                    "index": i,
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                }
            )
        if calls:
            finish = "tool_calls"
        return pieces, calls, finish

    def _usage(self, completion: int) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt.prompt_tokens,
            "total_tokens": self.prompt.prompt_tokens + completion,
            "completion_tokens": completion,
            "prompt_tokens_details": None,
            "reasoning_tokens": 0,
        }

    def _envelope(self, kind: str, choices: list[dict], usage: dict | None) -> dict[str, Any]:
        """The object every answer of both endpoints wraps its choices in (`kind`: its `object`)."""
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "choices": choices, "usage": usage}

    def _chunk(self, delta: dict | None, finish: str | None = None, usage: dict | None = None) -> str:
        delta = None if delta is None else {"role": None, "content": None, "reasoning_content": None,
                                            "tool_calls": None, **delta}
        choices = [] if delta is None else [{"index": 0, "delta": delta, **_finished(finish)}]
        return f"data: {json.dumps(self._envelope('chat.completion.chunk', choices, usage))}\n\n"

    @property
    def include_usage(self) -> bool:
        return bool((self.body.get("stream_options") or {}).get("include_usage"))

    async def _begin(self) -> float:
        self.sim.running += 1
        self.sim.used_tokens += self.prompt.prompt_tokens
        self.sim.prompt_tokens_total += self.prompt.prompt_tokens
        log.info(
            f"Prefill batch. #new-seq: 1, #new-token: {self.prompt.prompt_tokens}, #cached-token: 0, "
            f"token usage: {self.sim.used_tokens / self.sim.max_total_num_tokens:.2f}, "
            f"#running-req: {self.sim.running - 1}, #queue-req: 0"
        )
        start = time.monotonic()
        if self.sim.first_token_delay:
            await asyncio.sleep(self.sim.first_token_delay)
        return start

    def _end(self, emitted: int, start: float, first: float | None) -> None:
        self.sim.running -= 1
        self.sim.used_tokens -= self.prompt.prompt_tokens
        self.sim.generation_tokens_total += emitted
        if first is not None:
            self.sim.ttft.append(first - start)
            elapsed = time.monotonic() - first
            if emitted > 1 and elapsed > 0:
                self.sim.gen_throughput = round(emitted / elapsed, 2)

    async def _pace(self, emitted: int, first: float) -> None:
        if self.stall and emitted == self.stall.after_tokens:
            await asyncio.sleep(self.stall.seconds)
        if self.drop and emitted == self.drop.after_tokens:
            raise SimDisconnect("simulated disconnect")
        if self.sim.tokens_per_s > 0:
            due = first + emitted / self.sim.tokens_per_s
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if emitted and emitted % self.sim.decode_log_interval == 0:
            self._decode_log(emitted, first)

    def _decode_log(self, emitted: int, first: float) -> None:
        elapsed = max(time.monotonic() - first, 1e-6)
        usage = (self.sim.used_tokens + emitted) / self.sim.max_total_num_tokens
        log.info(
            f"Decode batch. #running-req: {self.sim.running}, #token: {self.sim.used_tokens + emitted}, "
            f"token usage: {usage:.2f}, cuda graph: True, gen throughput (token/s): {emitted / elapsed:.2f}, "
            f"#queue-req: 0"
        )

    async def stream(self) -> AsyncIterator[str]:
        pieces, calls, finish = self._plan()
        start = await self._begin()
        first: float | None = None
        emitted = 0
        try:
            yield self._chunk({"role": "assistant", "content": ""})
            first = time.monotonic()
            for piece in pieces:
                await self._pace(emitted, first)
                yield self._chunk({"content": piece})
                emitted += 1
            for call in calls:
                await self._pace(emitted, first)
                head = {
                    "id": call["id"],
                    "index": call["index"],
                    "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""},
                }
                yield self._chunk({"tool_calls": [head]})
                emitted += 1
                for part in _pieces(call["function"]["arguments"], 8):
                    await self._pace(emitted, first)
                    yield self._chunk(
                        {
                            "tool_calls": [
                                {
                                    "id": None,
                                    "index": call["index"],
                                    "type": "function",
                                    "function": {"name": None, "arguments": part},
                                }
                            ]
                        }
                    )
                    emitted += 1
            await self._pace(emitted, first)
            yield self._chunk({}, finish=finish)
            if self.include_usage:
                yield self._chunk(None, usage=self._usage(emitted))
            yield "data: [DONE]\n\n"
            self._decode_log(emitted, first)
        finally:
            self._end(emitted, start, first)

    async def _generate(self, count: int) -> int | None:
        """Paces `count` tokens of a whole (non-streamed) answer and accounts the request; how many were
        generated, or None when the client went away mid-answer (the drop fault)."""
        start = await self._begin()
        first = time.monotonic()
        emitted = 0
        try:
            for _ in range(count):
                await self._pace(emitted, first)
                emitted += 1
        except SimDisconnect:
            self._end(emitted, start, first)
            return None
        self._end(emitted, start, first)
        return emitted

    async def respond(self) -> Response:
        pieces, calls, finish = self._plan()
        emitted = await self._generate(len(pieces) + len(calls))
        if emitted is None:
            return BrokenResponse()
        message = {
            "role": "assistant",
            "content": "".join(pieces) if pieces or not calls else None,
            "reasoning_content": None,
            "tool_calls": calls or None,
        }
        choices = [{"index": 0, "message": message, **_finished(finish)}]
        return JSONResponse(self._envelope("chat.completion", choices, self._usage(emitted)))


class _TextTurn(_Turn):
    """A legacy completion: `text_completion` objects whose choices carry `text` (no roles, no tools)."""

    def _text_chunk(self, text: str | None, finish: str | None = None, usage: dict | None = None) -> str:
        choices = [] if text is None else [{"index": 0, "text": text, **_finished(finish)}]
        return f"data: {json.dumps(self._envelope('text_completion', choices, usage))}\n\n"

    async def stream(self) -> AsyncIterator[str]:
        pieces, _, finish = self._plan()
        start = await self._begin()
        first = time.monotonic()
        emitted = 0
        try:
            for piece in pieces:
                await self._pace(emitted, first)
                yield self._text_chunk(piece)
                emitted += 1
            yield self._text_chunk("", finish=finish)
            if self.include_usage:
                yield self._text_chunk(None, usage=self._usage(emitted))
            yield "data: [DONE]\n\n"
        finally:
            self._end(emitted, start, first)

    async def respond(self) -> Response:
        pieces, _, finish = self._plan()
        emitted = await self._generate(len(pieces))
        if emitted is None:
            return BrokenResponse()
        choices = [{"index": 0, "text": "".join(pieces), **_finished(finish)}]
        return JSONResponse(self._envelope("text_completion", choices, self._usage(emitted)))


def render_metrics(sim: SGLangSim) -> str:
    """Prometheus text with SGLang's metric names and labels."""
    labels = f'engine_type="unified",model_name="{sim.model}",pp_rank="0",tp_rank="0"'
    usage = sim.used_tokens / sim.max_total_num_tokens
    gauges = [
        ("num_running_reqs", "The number of running requests.", sim.running),
        ("num_queue_reqs", "The number of requests in the waiting queue.", 0),
        ("num_used_tokens", "The number of used tokens.", sim.used_tokens),
        ("token_usage", "The token usage.", usage),
        (
            "max_total_num_tokens",
            "Maximum total number of tokens in the KV cache pool.",
            sim.max_total_num_tokens,
        ),
        ("gen_throughput", "The generation throughput (token/s).", sim.gen_throughput),
        ("cache_hit_rate", "The prefix cache hit rate.", 0.0),
        (
            "spec_accept_length",
            "The average acceptance length of speculative decoding.",
            sim.spec_accept_length,
        ),
        (
            "spec_accept_rate",
            "The average acceptance rate of speculative decoding.",
            round(sim.spec_accept_length / 4, 4),
        ),
        ("num_retracted_reqs", "The number of retracted requests.", sim.faults.retractions),
    ]
    out: list[str] = []
    for name, help_text, value in gauges:
        out += [
            f"# HELP sglang:{name} {help_text}",
            f"# TYPE sglang:{name} gauge",
            f"sglang:{name}{{{labels}}} {float(value)}",
        ]
    for name, help_text, value in [
        ("prompt_tokens_total", "Number of prefill tokens processed.", sim.prompt_tokens_total),
        ("generation_tokens_total", "Number of generation tokens processed.", sim.generation_tokens_total),
    ]:
        out += [
            f"# HELP sglang:{name} {help_text}",
            f"# TYPE sglang:{name} counter",
            f"sglang:{name}{{{labels}}} {float(value)}",
        ]
    name = "sglang:time_to_first_token_seconds"
    out += [f"# HELP {name} Histogram of time to first token in seconds.", f"# TYPE {name} histogram"]
    for bound in TTFT_BUCKETS:
        count = sum(1 for t in sim.ttft if t <= bound)
        out.append(f'{name}_bucket{{{labels},le="{bound}"}} {float(count)}')
    out.append(f'{name}_bucket{{{labels},le="+Inf"}} {float(len(sim.ttft))}')
    out.append(f"{name}_sum{{{labels}}} {float(sum(sim.ttft))}")
    out.append(f"{name}_count{{{labels}}} {float(len(sim.ttft))}")
    return "\n".join(out) + "\n"
