"""The gateway's shell: who asks, which model answers, waiting for the GPU, the ledger.

- `local` (or the served model's name) is proxied to SGLang's own `/v1/chat/completions` under a
  lease of the LLM resident at interactive priority: the body goes through as the client sent it
  (unknown fields, tools, tool_choice), only `model` is set to the served name; the lease is held
  until the last byte, so the scheduler never swaps the resident out under a streaming answer.
- `claude` (and `api.cloud_aliases`, and the configured cloud model's name) goes to the hub's cloud
  provider, translated (bridges/api/wire.py), under the same privacy gate and spend caps as chat.
- `auto` asks the chat router (hub/chat/router.py) with the token's policy.
- `/v1/messages` passes Anthropic's Messages API through with the hub's key, byte for byte.
Every request ends as a cost row (client = the token's name) in the one ledger.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from bridges.api.pump import Pump
from bridges.api.upstream import Upstream, UpstreamError
from bridges.api.wire import (
    DONE,
    BadInput,
    LocalEvents,
    chunk,
    completion_body,
    error_body,
    final_chunks,
    sse,
    to_messages,
    to_tools,
)
from bridges.mcp.access import Caller
from hub.chat.budget import BudgetExceeded, Ledger, estimate_usd, prompt_tokens_bound
from hub.chat.router import decide
from hub.context import Context
from hub.errors import HubError
from hub.llm.errors import LLMError
from hub.llm.pricing import cost_usd
from hub.llm.types import Usage
from hub.privacy import LOCAL_ONLY, CloudRefused, Verdict

log = logging.getLogger(__name__)

ROLES_THAT_ASK = ("write", "owner")
WAIT_BUCKETS = (0.1, 1, 5, 15, 30, 60, 120, 300, 600)
IMAGE_TOKENS = 1600  # what Claude charges at most for one image (it scales larger ones down to about this)


class Refused(HubError):
    """A request answered with an HTTP error before any model was asked."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.headers = status, kind, headers or {}


@dataclass
class ClientStats:
    requests: dict[tuple[str, str], int] = field(default_factory=dict)  # (route, outcome) -> n
    wait_s: list[float] = field(default_factory=list)  # the last waits for the GPU


@dataclass
class Outcome:
    """What one request did, for the ledger and /metrics."""

    route: str
    model: str
    usage: Usage = field(default_factory=Usage)
    usd: float = 0.0
    wait_s: float = 0.0
    ok: bool = True
    done_sent: bool = False  # the upstream stream's own `data: [DONE]` went to the client


class Gateway:
    def __init__(self, hub) -> None:
        self.hub = hub
        self.config = hub.config.api
        # the MCP verifier's rule (a constant-time compare with every configured secret), with each
        # token's Caller made once rather than per request
        self._callers = [(t.token.get_secret_value().encode(),
                          Caller(name=t.name, role=t.role, policy=t.policy)) for t in self.config.tokens]
        self.anonymous = Caller(name="anonymous", role=self.config.anonymous_role, via="anonymous")
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=10.0), limits=httpx.Limits(
            max_connections=64, max_keepalive_connections=16))
        self.upstream = Upstream()  # the local model server's hop (the hot path)
        self.waiting = 0  # requests whose lease is pending
        self.stats: dict[str, ClientStats] = {}
        self._later: set[asyncio.Task] = set()
        self._ledger = hub.chat.ledger if hub.chat is not None else Ledger(hub.store.db, hub.config.routing.budget)

    async def close(self) -> None:
        if self._later:
            await asyncio.gather(*self._later, return_exceptions=True)
        await self.upstream.aclose()
        await self.http.aclose()

    def later(self, coro) -> None:
        """Bookkeeping that need not hold a response back (waited for at shutdown)."""
        task = asyncio.create_task(coro)
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    # ---- who and what ---------------------------------------------------------------------------
    async def caller(self, headers) -> Caller | None:
        """The caller from `Authorization: Bearer` or `x-api-key` (Claude Code sends either)."""
        if not self._callers:
            return self.anonymous
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else headers.get("x-api-key", "").strip()
        if not token:
            return None
        given = token.encode()
        found = None
        for secret, caller in self._callers:  # every secret compared, in constant time each
            if hmac.compare_digest(secret, given):
                found = caller
        return found

    def target(self, model: Any) -> str:
        """local | cloud | auto for a model name; Refused(404) for a name the hub does not serve."""
        llm = self.hub.config.llm
        if model in ("local", llm.local.model):
            return "local"
        if model == "auto":
            return "auto"
        if model in self.config.cloud_aliases or model == llm.cloud.model:
            return "cloud"
        raise Refused(404, f"the model {model!r} does not exist here; use one of: {', '.join(self.model_names())}",
                      "not_found_error")

    def model_names(self) -> list[str]:
        llm = self.hub.config.llm
        names = ["local", llm.local.model, "auto"]
        if self.hub.chat is not None and self.hub.chat.cloud is not None:
            names += [*self.config.cloud_aliases, llm.cloud.model]
        return list(dict.fromkeys(names))

    def verdict(self, caller: Caller, ctx: Context) -> tuple[Context, Verdict]:
        gate = self.hub.chat.gate if self.hub.chat is not None else None
        if gate is None:
            from hub.privacy import PrivacyGate
            gate = PrivacyGate.from_config(self.hub.config)
        return gate.scope(ctx, caller_policy=caller.policy)

    @staticmethod
    def refusal(verdict: Verdict) -> str:
        if verdict.source == "caller":
            return ("This token is local-only, so nothing was sent to Claude; the hub's owner can change the "
                    "token's `policy` in `api.tokens`.")
        return verdict.refusal()

    # ---- waiting for the GPU --------------------------------------------------------------------
    def eta(self, job_id: str) -> float | None:
        snap = self.hub.gpu.snapshot()
        mine = next((q for q in snap.queue if q.job_id == job_id), None)
        if mine is not None and mine.eta_s is not None:
            return mine.eta_s
        return snap.eta_for(self.hub.config.llm.local.resident)

    def admit_waiter(self) -> None:
        """A full queue answers 429 with Retry-After from the resident's ETA, before anything waits."""
        if self.waiting < self.config.max_waiting:
            return
        eta = self.hub.gpu.snapshot().eta_for(self.hub.config.llm.local.resident)
        retry = max(1, math.ceil(eta if eta else self.config.est_seconds))
        raise Refused(429, f"{self.waiting} requests already wait for the local model (api.max_waiting); "
                           f"retry in {retry} s", "rate_limit_error", {"Retry-After": str(retry)})

    @staticmethod
    def refuse_if_full(exc: HubError) -> None:
        """The scheduler's queue limit (`GpuQueueFull`) is the client's 429 with Retry-After from its ETA."""
        from hub.gpu.runtime import GpuQueueFull  # loaded already wherever a scheduler can raise it

        if isinstance(exc, GpuQueueFull):
            retry = max(1, math.ceil(exc.retry_after_s or 0))
            raise Refused(429, f"the GPU queue is full: {exc}", "rate_limit_error", {"Retry-After": str(retry)})

    def waiting_line(self, job_id: str) -> str:
        eta = self.eta(job_id)
        resident = self.hub.config.llm.local.resident
        return f"waiting for {resident}, ETA {max(1, round(eta))} s" if eta else f"waiting for {resident}"

    async def leased(self, pump: Pump, ctx: Context, caller: Caller, outcome: Outcome, job_id: str):
        """Enter the LLM resident's lease at interactive priority; counts as waiting until granted."""
        local = self.hub.config.llm.local
        lease = self.hub.gpu.lease(local.resident, job_id=job_id, context=ctx, job_class="interactive",
                                   est_seconds=self.config.est_seconds, label=f"api {caller.name}")
        began = time.monotonic()
        self.waiting += 1
        pump.waiting = True
        try:
            await lease.__aenter__()
        finally:
            self.waiting -= 1
            pump.waiting = False
            outcome.wait_s = time.monotonic() - began
        return lease

    # ---- the local model -------------------------------------------------------------------------
    async def local_work(self, pump: Pump, body: dict[str, Any], ctx: Context, caller: Caller,
                         outcome: Outcome, path: str = "/chat/completions") -> tuple[int, bytes, str] | None:
        stream = bool(body.get("stream"))
        local = self.hub.config.llm.local
        wire = dict(body, model=local.model)
        client_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if stream and not client_usage:  # the ledger wants the usage: asked for, and not shown
            wire["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        headers = {"content-type": "application/json"}
        if local.api_key is not None:
            headers["authorization"] = f"Bearer {local.api_key.get_secret_value()}"
        url = local.base_url.rstrip("/") + path
        job_id = f"api-{ctx.id}"
        try:
            lease = await self.leased(pump, ctx, caller, outcome, job_id)
        except HubError as exc:
            outcome.ok = False
            self.refuse_if_full(exc)
            return self._fail(pump, stream, 503, f"the GPU scheduler cannot serve the local model: {exc}")
        ok = False
        try:
            async with self._local_post(url, json.dumps(wire).encode(), headers) as resp:
                if resp.status_code != 200:
                    data = await resp.aread()
                    outcome.ok = False
                    if stream:
                        pump.emit(sse(_as_error(data, resp.status_code)))
                        return None
                    return resp.status_code, data, resp.headers.get("content-type", "application/json")
                if not stream:
                    data = await resp.aread()
                    with _quiet():
                        outcome.usage = _openai_usage(json.loads(data).get("usage"))
                    ok = True
                    return 200, data, resp.headers.get("content-type", "application/json")

                async def relay():
                    """The upstream events, read by the response itself (no hop through a queue)."""
                    events = LocalEvents(show_usage=client_usage)
                    try:
                        try:
                            async for raw in resp.aiter_raw():
                                if out := events.feed(raw):
                                    yield out
                            if rest := events.rest():
                                yield rest
                        finally:
                            outcome.usage, outcome.done_sent = events.usage, events.done
                    except (httpx.HTTPError, UpstreamError) as exc:
                        outcome.ok = False
                        yield sse(error_body(f"the local model failed mid-answer ({type(exc).__name__})",
                                             "server_error"))

                await pump.relay(relay())
                ok = outcome.ok
                return None
        except (httpx.HTTPError, UpstreamError) as exc:
            outcome.ok = False
            return self._fail(pump, stream, 502, f"the local model failed ({type(exc).__name__})")
        finally:
            if ok:
                await lease.__aexit__(None, None, None)
            else:  # the lease records a failed job, not a finished one
                early = RuntimeError("the request ended early")
                await lease.__aexit__(RuntimeError, early, None)

    def _local_post(self, url: str, body: bytes, headers: dict[str, str]):
        """The lean client for plain HTTP (the model server on the box), httpx for anything else."""
        if url.startswith("http://"):
            return self.upstream.post(url, body, headers)
        return self.http.stream("POST", url, content=body, headers=headers)

    @staticmethod
    def _fail(pump: Pump, stream: bool, status: int, message: str):
        if stream:
            pump.emit(sse(error_body(message, "server_error")))
            return None
        return status, json.dumps(error_body(message, "server_error")).encode(), "application/json"

    # ---- the cloud model, translated ------------------------------------------------------------------
    async def cloud_work(self, pump: Pump, body: dict[str, Any], ctx: Context, outcome: Outcome,
                         messages, tools, choice=None) -> tuple[int, bytes, str] | None:
        chat = self.hub.chat
        stream = bool(body.get("stream"))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        model = chat.cloud.model
        outcome.model = model
        max_tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or
                         self.hub.config.llm.cloud.max_tokens)
        price = chat._price()
        images = sum(len(m.images) for m in messages)
        bound = (prompt_tokens_bound(json.dumps([dataclasses.replace(m, images=[]).__dict__ for m in messages],
                                                default=repr))
                 + IMAGE_TOKENS * images + 2 * prompt_tokens_bound(json.dumps(body.get("tools") or [])))
        rid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        try:
            hold = await self._ledger.reserve(estimate_usd(bound, max_tokens, price), provider="anthropic",
                                              model=model, context=ctx, room=None)
        except BudgetExceeded as exc:
            outcome.ok = False
            return self._fail_kind(pump, stream, 429, str(exc), "insufficient_quota")
        meter = Usage()
        first = True

        async def on_text(piece: str) -> None:
            nonlocal first
            if stream:
                delta = {"role": "assistant", "content": piece} if first else {"content": piece}
                first = False
                pump.emit(sse(chunk(rid, model, delta)))

        try:
            completion = await chat.cloud.stream(messages, tools, max_tokens=max_tokens, on_text=on_text,
                                                 context=ctx, meter=meter, tool_choice=choice)
        except BaseException as exc:
            outcome.usage, outcome.usd, outcome.ok = meter, cost_usd(meter, price), False
            await asyncio.shield(self._ledger.settle(hold, meter, outcome.usd))
            if isinstance(exc, CloudRefused):
                return self._fail_kind(pump, stream, 403, str(exc), "permission_error")
            if isinstance(exc, LLMError):
                return self._fail_kind(pump, stream, 502, f"Claude failed: {exc}", "server_error")
            raise
        outcome.usage, outcome.usd = completion.usage, cost_usd(completion.usage, price)
        await asyncio.shield(self._ledger.settle(hold, completion.usage, outcome.usd))
        if not stream:
            return 200, json.dumps(completion_body(rid, model, completion)).encode(), "application/json"
        if first:
            pump.emit(sse(chunk(rid, model, {"role": "assistant", "content": ""})))
        for item in final_chunks(rid, model, completion, include_usage=include_usage):
            pump.emit(sse(item))
        return None

    @staticmethod
    def _fail_kind(pump: Pump, stream: bool, status: int, message: str, kind: str):
        if stream:
            pump.emit(sse(error_body(message, kind)))
            return None
        return status, json.dumps(error_body(message, kind)).encode(), "application/json"

    async def route_auto(self, body: dict[str, Any], verdict: Verdict, messages, tools) -> str:
        """The chat router's choice for an `auto` request: local or cloud (or Refused when neither)."""
        chat = self.hub.chat
        if chat is None:
            return "local"
        text = next((m.content for m in reversed(messages) if m.role == "user"), "")
        route = decide(await chat._router_input(text, verdict.policy, None, messages, tools, self.refusal(verdict),
                                                verdict.source))
        if route.target == "none":
            raise Refused(503, f"no model can answer right now: {route.reason}", "server_error")
        return route.target

    # ---- the ledger -------------------------------------------------------------------------------------
    async def record(self, ctx: Context, outcome: Outcome) -> None:
        """The cost row of a local request (client = the token's name). A cloud call's row is its
        reservation, written before the call and settled after (hub/chat/budget.py)."""
        try:
            await Ledger.insert(self.hub.store.db, self._ledger.rows(
                [("local", outcome.model, outcome.usage, outcome.usd)], ctx, None))
        except Exception as exc:
            log.error("storing the usage of an API request failed: %s", exc)

    def count(self, client: str, route: str, result: str, wait_s: float | None = None) -> None:
        stats = self.stats.setdefault(client, ClientStats())
        stats.requests[(route, result)] = stats.requests.get((route, result), 0) + 1
        if wait_s is not None:
            stats.wait_s.append(wait_s)
            del stats.wait_s[:-1000]

    def snapshot(self) -> dict[str, Any]:
        """Per client: requests by route and result, and the recent waits for the GPU."""
        return {"waiting": self.waiting, "clients": {
            name: {"requests": [{"route": r, "result": o, "n": n} for (r, o), n in sorted(s.requests.items())],
                   "wait_s": list(s.wait_s)} for name, s in self.stats.items()}}

    def status(self) -> dict[str, Any]:
        """What `hub.status()`, the status page and /metrics show: the URL, requests waiting now, and
        per client the requests by route and result and the total seconds waited for the GPU."""
        snap = self.snapshot()
        return {"url": getattr(self, "url", None), "waiting": snap["waiting"], "clients": {
            name: {"requests": c["requests"], "waits": len(c["wait_s"]), "wait_s_total": round(sum(c["wait_s"]), 3)}
            for name, c in snap["clients"].items()}}


def _openai_usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return Usage(input_tokens=int(raw.get("prompt_tokens") or 0), output_tokens=int(raw.get("completion_tokens") or 0))


def _as_error(data: bytes, status: int) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        return parsed
    message = parsed.get("message") if isinstance(parsed, dict) else data[:300].decode("utf-8", "replace")
    return error_body(f"the local model answered {status}: {message}", "server_error")


class _quiet:
    """Usage that cannot be read is not worth failing a request for: it stays zero."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        return kind is not None and issubclass(kind, ValueError | KeyError | TypeError | AttributeError)


__all__ = ["DONE", "LOCAL_ONLY", "BadInput", "Gateway", "Outcome", "Refused", "to_messages", "to_tools"]
