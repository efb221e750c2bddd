"""ChatService (`hub.chat`): one turn = route, stream the agent loop to a sink, remember, account.

The imperative shell around the pure parts (router, trimming, budget arithmetic): it reads the
GPU snapshot, provider health and spend, asks `router.decide`, leases the LLM resident for each
local call (so turns queue behind model swaps), fails over between providers when the route
allows, and stores the turn (messages, cost rows, the routing reason) in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from hub.chat.agent import run_agent
from hub.chat.api import BudgetState, ConversationKey, ReplySink, TurnOutcome, TurnRequest
from hub.chat.budget import BudgetExceeded, Ledger, estimate_usd, prompt_tokens_bound
from hub.chat.health import Health
from hub.chat.memory import Memory, fit
from hub.chat.router import NAMES, Route, RouterInput, decide, split_prefix
from hub.chat.tools import ReplayGuard, Toolbox
from hub.config.llm import ModelPrice
from hub.context import Context
from hub.errors import HubError, StoreError
from hub.llm.errors import AuthFailed, BadRequest, LLMError, ProviderUnavailable, StreamBroken
from hub.llm.pricing import cost_usd, estimate_tokens
from hub.llm.types import Completion, Message, ToolSpec, Usage
from hub.privacy import CloudRefused, PrivacyGate
from hub.store.health import describe, is_transient

log = logging.getLogger(__name__)

WHY_KEY = "chat.why:"
UNPRICED = ModelPrice(input_per_mtok=15.0, output_per_mtok=75.0, cache_write_per_mtok=18.75, cache_read_per_mtok=1.5)
PROVIDER_LABEL = {"local": "local", "cloud": "anthropic"}


@dataclass
class _Turn:
    request: TurnRequest
    context: Context  # the request's context, marked local-only when the privacy gate says so
    sink: ReplySink
    current: str
    fallback: str | None
    reason: str
    suppress: bool = False  # after a broken stream: no more deltas, `finish` carries the answer
    emitted: bool = False
    calls: list[tuple[str, str, Usage, float]] = field(default_factory=list)
    lease_n: int = 0
    avoided: str | None = None

    @property
    def cost(self) -> float:
        return sum(c[3] for c in self.calls)


async def _discard(_: str) -> None:
    return None


@dataclass
class _Pending:
    """A finished turn being stored behind the reply; kept and retried while SQLite cannot write."""

    task: asyncio.Task | None = None
    tried: asyncio.Event = field(default_factory=asyncio.Event)  # the first attempt is over (saved or not)
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # retry now (the store answered a probe)
    error: str | None = None  # why it is not saved yet


STORAGE_REFUSAL = ("{what}: the hub cannot save this conversation ({error}), so nothing was sent to a model. "
                   "{advice} Answers already given are kept and saved once the store can write again.")
RETRY_FIRST_S, RETRY_MAX_S = 0.2, 5.0


class ChatService:
    def __init__(self, hub, *, local, cloud, health: Health | None = None, gate: PrivacyGate | None = None) -> None:
        self.hub = hub
        self.config = hub.config
        self.local = local
        self.cloud = cloud
        self.memory = Memory(hub.store)
        self.ledger = Ledger(hub.store.db, self.config.routing.budget)
        self.health = health or Health()
        self.gate = gate or getattr(cloud, "gate", None) or PrivacyGate.from_config(self.config)
        self.toolbox = Toolbox(hub)
        self._why: dict[ConversationKey, str] = {}
        self._tool_tokens: dict[Any, int] = {}
        self._pending: dict[ConversationKey, _Pending] = {}  # write-behind of finished turns
        self._closing = False
        self._warned_price = False

    async def start(self) -> None:
        rows = await self.hub.store.db.execute_fetchall(
            "SELECT key, value FROM kv WHERE key LIKE ?", (WHY_KEY + "%",))
        for k, v in rows:
            bridge, room, thread = json.loads(k[len(WHY_KEY):])
            self._why[ConversationKey(bridge, room, thread)] = json.loads(v)

    async def close(self) -> None:
        self._closing = True
        for pending in list(self._pending.values()):
            pending.wake.set()
        tasks = [p.task for p in self._pending.values() if p.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for provider in (self.local, self.cloud):
            if provider is not None:
                await provider.aclose()

    # ---- the public API ------------------------------------------------------------------------
    async def budget(self) -> BudgetState:
        await self.settled()
        return await self.ledger.state()

    def why(self, key: ConversationKey) -> str:
        return self._why.get(key, "")

    async def new_conversation(self, key: ConversationKey) -> None:
        """Forget the conversation, and why its last turn went where it went (/why speaks of this one)."""
        await self.settled(key)
        await self.memory.new(key)
        self._why.pop(key, None)
        await self.hub.store.db.execute("DELETE FROM kv WHERE key=?",
                                        (WHY_KEY + json.dumps([key.bridge, key.room, key.thread]),))

    async def compact(self, key: ConversationKey) -> str:
        """Summarise all but the newest turn with the local model; the summary replaces them."""
        await self.settled(key)
        summary, history = await self.memory.load(key)
        if len(history) <= 2:
            return summary or ""
        older, keep = history[:-2], history[-2:]
        transcript = "\n".join(f"{m.role}: {m.content}" for m in older)
        earlier = f"Earlier summary:\n{summary}\n\n" if summary else ""
        text = await self.complete([
            Message("system", "Summarise this conversation in a few short paragraphs for your own memory. "
                              "Keep facts, decisions, names, numbers and open questions."),
            Message("user", f"{earlier}Conversation:\n{transcript}")], max_tokens=800)
        await self.memory.restart_with_summary(key, text.strip(), keep)
        return text.strip()

    async def complete(self, messages: list, *, route: str = "local", max_tokens: int = 1024,
                       context: Context | None = None) -> str:
        """A plain local completion for skills (summaries, explanations). Never the cloud."""
        if route != "local":
            raise HubError("complete() is local-only; use a chat turn for Claude")
        msgs = [m if isinstance(m, Message) else Message(m["role"], m.get("content") or "") for m in messages]
        ctx = context or Context.new("cli")
        completion = await self._local_stream(ctx, msgs, [], _discard, max_tokens, label="completion",
                                               job_class="scheduled" if ctx.origin == "cron" else "skill")
        rows = self.ledger.rows([("local", self.local.model, completion.usage, 0.0)], ctx, None)
        await Ledger.insert(self.hub.store.db, rows)
        return completion.text

    async def turn(self, req: TurnRequest, sink: ReplySink) -> TurnOutcome:
        text, prefix_override = split_prefix(req.text)
        override = req.override or prefix_override
        key = req.conversation
        ctx, verdict = self.gate.scope(req.context, room=key.room,
                                       room_policy=None if req.room_policy == "auto" else req.room_policy,
                                       caller_policy=req.caller_policy)
        await sink.start()
        refusal = await self._storage_refusal(key)
        if refusal:
            await sink.fail(refusal)
            return TurnOutcome(route="none", reason="storage", text="", input_tokens=0, output_tokens=0,
                               cost_usd=0.0, error=refusal)
        if key in self._pending:
            await self.settled(key)
        tools = self.toolbox.specs(req.grant)
        window = self._window(req, tools)
        summary, history = await self.memory.load(key, window)  # only what can fit: flat as the history grows
        messages = fit(self.config.llm.system_prompt, summary, history, text, window)
        policy = verdict.policy
        route = decide(await self._router_input(text, policy, override, messages, tools, verdict.refusal(),
                                                verdict.source))
        await self.hub.bus.fire("turn_routed", {"route": route.target, "reason": route.reason, "bridge": key.bridge,
                                                "room": key.room, "thread": key.thread}, ctx)
        if route.refused:
            await self._remember(key, route.target, route.reason, [])
            await sink.fail(route.refused)
            return TurnOutcome(route="none", reason=route.reason, text="", input_tokens=0, output_tokens=0,
                               cost_usd=0.0, error=route.refused)
        if route.target == "none":
            await self._remember(key, route.target, route.reason, [])
            await sink.fail(f"No model can answer right now: {route.reason}.")
            return TurnOutcome(route="none", reason=route.reason, text="", input_tokens=0, output_tokens=0,
                               cost_usd=0.0, error=route.reason)
        if route.notice:
            await sink.notice(route.notice)
        turn = _Turn(req, ctx, sink, route.target, route.fallback, route.reason, avoided=route.avoided)
        guard = ReplayGuard(req.request_id) if req.request_id else None
        try:
            result = await run_agent(
                messages, tools, call=lambda m, t: self._call(turn, m, t),
                execute=lambda c: self.toolbox.run(c, ctx, req.grant, req.approver, guard),
                max_steps=self.config.llm.max_tool_steps)
        except (LLMError, BudgetExceeded, CloudRefused) as exc:
            message = self._failure_text(exc, turn, policy)
            await self._remember(key, turn.current, f"{turn.reason}; failed: {exc}", turn.calls, ctx)
            await sink.fail(message)
            return TurnOutcome(route=turn.current, reason=turn.reason, text=getattr(exc, "partial", ""),
                               input_tokens=sum(c[2].input_tokens for c in turn.calls),
                               output_tokens=sum(c[2].output_tokens for c in turn.calls),
                               cost_usd=turn.cost, error=message)
        except asyncio.CancelledError:
            await self._remember(key, turn.current, f"{turn.reason}; cancelled", turn.calls, ctx)
            raise
        except Exception as exc:  # a bug or a broken sink: keep the spend and the reason, then re-raise
            await self._remember(key, turn.current, f"{turn.reason}; failed: {type(exc).__name__}", turn.calls, ctx)
            raise
        answer = result.text or "(no answer)"
        if result.hit_max_steps:
            answer += f"\n\n(stopped after {result.steps} tool steps)"
        why = self._why_row(key, turn.current, turn.reason)  # /why answers at once, before the write
        self._write_behind(key, lambda: self._store_turn(turn, key, text, answer, result.usage.output_tokens, why))
        await sink.finish(answer)
        outcome = TurnOutcome(route=turn.current, reason=turn.reason, text=answer,
                              input_tokens=result.usage.input_tokens, output_tokens=result.usage.output_tokens,
                              cost_usd=round(turn.cost, 6))
        await self.hub.bus.fire("turn_finished", {
            "route": outcome.route, "bridge": key.bridge, "room": key.room, "steps": result.steps,
            "tools": result.tool_calls, "input_tokens": outcome.input_tokens,
            "output_tokens": outcome.output_tokens, "cost_usd": outcome.cost_usd}, ctx)
        return outcome

    async def _store_turn(self, turn: _Turn, key: ConversationKey, text: str, answer: str, output_tokens: int,
                          why: tuple[str, tuple]) -> None:
        """The turn in one transaction (cloud calls wrote their cost rows when they were settled)."""
        ctx = turn.context
        await self.memory.append_turn(
            key, text, answer, route=turn.current, output_tokens=output_tokens, context_id=ctx.id,
            costs=self.ledger.rows(_unsettled(turn.calls), ctx, key.room), extra=why)

    # ---- routing inputs --------------------------------------------------------------------------
    def _gpu(self) -> tuple[str | None, float | None]:
        snap = self.hub.gpu.snapshot()
        llm = self.config.llm.local.resident
        if snap.resident is None and not snap.residents:
            return None, None  # no scheduler: nothing to wait for
        if snap.resident == llm and snap.state in ("ready", "busy", "idle"):
            return None, 0.0
        eta = snap.eta_for(llm)
        error = (snap.residents.get(llm) or {}).get("error")
        if error and snap.resident != llm:
            return f"the local model failed to start ({error})", eta
        if snap.resident and snap.resident != llm:
            return f"the GPU is busy with {snap.resident}", eta
        if snap.resident == llm:
            return f"the local model is {snap.state}", eta
        return "the local model is not loaded", eta

    def _cloud_estimate(self, messages: list[Message], tools: list[ToolSpec]) -> float:
        if self.cloud is None:
            return 0.0
        tokens = sum(prompt_tokens_bound(m.content) + sum(prompt_tokens_bound(json.dumps(c.arguments))
                                                        for c in m.tool_calls) for m in messages)
        tokens += 4 * len(messages) + 2 * self._tools_tokens(tools)  # role markers; tool schemas are dense JSON
        return estimate_usd(tokens, self.config.llm.cloud.max_tokens, self._price())

    async def _router_input(self, text: str, policy: str, override: str | None, messages: list[Message],
                            tools: list[ToolSpec], privacy_refusal: str = "",
                            policy_source: str | None = "room") -> RouterInput:
        cloud_cfg = self.config.llm.cloud
        if self.cloud is None:
            cloud_state = "disabled"
            note = "Claude is not configured" if cloud_cfg.enabled else "Claude is disabled in the config"
        else:
            cloud_state = "down" if self.health.state("cloud") == "down" else "up"
            note = f"Claude is failing ({self.health.error('cloud')})" if cloud_state == "down" else ""
        budget_ok, budget_note = True, ""
        if cloud_state == "up" and policy != "local-only":
            estimate = self._cloud_estimate(messages, tools)
            state = await self.ledger.state()
            budget_ok = state.allows(estimate)
            budget_note = "" if budget_ok else state.refusal(estimate)
        blocker, eta = self._gpu()
        return RouterInput(text=text, room_policy=policy, override=override,
                           local_health=self.health.state("local"), gpu_blocker=blocker, gpu_eta_s=eta,
                           cloud_state=cloud_state, cloud_note=note, budget_ok=budget_ok, budget_note=budget_note,
                           rules=tuple(self.config.routing.task_rules), privacy_refusal=privacy_refusal,
                           policy_source=policy_source)

    def _window(self, req: TurnRequest, tools: list[ToolSpec]) -> int:
        llm = self.config.llm
        window = llm.local.context_window - llm.local.max_tokens
        if self.cloud is not None:
            window = min(window, llm.cloud.context_window - llm.cloud.max_tokens)
        return max(1024, window - self._tools_tokens(tools))

    def _tools_tokens(self, tools: list[ToolSpec]) -> int:
        key = id(tools)
        if key not in self._tool_tokens:
            self._tool_tokens[key] = sum(estimate_tokens(json.dumps(t.parameters)) + estimate_tokens(t.description)
                                         for t in tools)
        return self._tool_tokens[key]

    def _price(self) -> ModelPrice:
        """The configured price of the cloud model; an unpriced model is charged at a conservative
        (Opus-class) rate so the spend caps still hold."""
        price = self.config.llm.cloud.prices.get(self.config.llm.cloud.model)
        if price is None:
            if not self._warned_price:
                log.warning("llm.cloud.prices has no entry for %s: spend is counted at $%s/$%s per Mtok",
                            self.config.llm.cloud.model, UNPRICED.input_per_mtok, UNPRICED.output_per_mtok)
                self._warned_price = True
            return UNPRICED
        return price

    # ---- one model call, with failover -------------------------------------------------------------
    async def _call(self, turn: _Turn, messages: list[Message], tools: list[ToolSpec]) -> Completion:
        while True:
            provider = turn.current
            first = True

            async def on_text(piece: str) -> None:
                nonlocal first
                if turn.suppress:
                    return
                if first:
                    first = False
                    if turn.emitted:
                        await turn.sink.delta("\n\n")
                    turn.emitted = True
                await turn.sink.delta(piece)

            try:
                if provider == "cloud":
                    completion = await self._cloud_call(turn, messages, tools, on_text)
                else:
                    turn.lease_n += 1
                    completion = await self._local_stream(
                        turn.context, messages, tools, on_text, self.config.llm.local.max_tokens,
                        label=f"chat {turn.request.conversation.room}", n=turn.lease_n)
            except (LLMError, BudgetExceeded, CloudRefused) as exc:
                if isinstance(exc, LLMError) and not isinstance(exc, BadRequest):
                    self.health.failed(provider, str(exc))
                alternative = turn.fallback
                if alternative is None or isinstance(exc, BadRequest):
                    raise
                turn.fallback = None
                if getattr(exc, "partial", ""):
                    turn.suppress = True
                why = ("over budget" if isinstance(exc, BudgetExceeded) else
                       "local-only" if isinstance(exc, CloudRefused) else type(exc).__name__)
                turn.reason += f"; {NAMES[provider]} failed ({why}) → {NAMES[alternative]}"
                await turn.sink.notice(f"{_the(provider).capitalize()} failed ({plain_reason(exc)}); "
                                       f"answering with {_the(alternative)} instead.")
                turn.current = alternative
                continue
            self.health.ok(provider)
            usd = cost_usd(completion.usage, self._price()) if provider == "cloud" else 0.0
            turn.calls.append((PROVIDER_LABEL[provider], completion.model, completion.usage, usd))
            return completion

    async def _cloud_call(self, turn: _Turn, messages, tools, on_text) -> Completion:
        """Reserve the call's worst case, make it, settle to what it really cost. A call that fails
        or is cancelled midway is charged for the tokens the meter saw (the API bills them)."""
        if self.cloud is None:
            raise BudgetExceeded("Claude is not configured")
        hold = await self.ledger.reserve(self._cloud_estimate(messages, tools), provider=PROVIDER_LABEL["cloud"],
                                         model=self.cloud.model, context=turn.context,
                                         room=turn.request.conversation.room)
        meter = Usage()
        try:
            completion = await self.cloud.stream(messages, tools, max_tokens=self.config.llm.cloud.max_tokens,
                                                 on_text=on_text, context=turn.context, meter=meter)
        except BaseException:
            usd = cost_usd(meter, self._price())
            # shielded: a second cancel cannot leave the row at its worst case half-way through
            await asyncio.shield(self.ledger.settle(hold, meter, usd))
            if usd or meter.input_tokens or meter.output_tokens:
                turn.calls.append((PROVIDER_LABEL["cloud"], self.cloud.model, meter, usd))
            raise
        completion.usage = meter  # every attempt, retried ones included: what the API bills
        await asyncio.shield(self.ledger.settle(hold, meter, cost_usd(meter, self._price())))
        return completion

    async def _local_stream(self, ctx: Context, messages, tools, on_text, max_tokens: int, *, label: str,
                            n: int = 0, job_class: str | None = None) -> Completion:
        """One local call under a lease of the LLM resident: chat turns are `interactive` (scheduled
        ones `scheduled`), completions for skills are `skill`, so they queue behind swaps fairly."""
        if job_class is None:
            job_class = "scheduled" if ctx.origin == "cron" else "interactive"
        local = self.config.llm.local
        async with contextlib.AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(self.hub.gpu.lease(
                    local.resident, job_id=f"turn-{ctx.id}-{n}", context=ctx, job_class=job_class,
                    est_seconds=30.0, label=label))
            except HubError as exc:  # e.g. the scheduler cannot start the LLM resident
                raise ProviderUnavailable("local", f"the GPU scheduler refused the lease: {exc}") from exc
            return await self.local.stream(messages, tools, max_tokens=max_tokens, on_text=on_text, context=ctx)

    # ---- bookkeeping ------------------------------------------------------------------------------
    def _write_behind(self, key: ConversationKey, write: Callable[[], Awaitable[None]]) -> None:
        """Store a finished turn without holding the answer back; writes per conversation stay in order,
        and anything that reads them (the next turn, /new, /compact, budget, shutdown) waits first.

        When SQLite cannot write (disk full, a lock held too long) the turn is not dropped: it stays
        pending, is retried with a backoff, and the storage health check says why; the conversation's
        next turn is refused with a clear "storage full" message until the store can write again.
        """
        previous = self._pending.get(key)
        pending = _Pending()

        async def run() -> None:
            if previous is not None and previous.task is not None:
                await asyncio.gather(previous.task, return_exceptions=True)
            delay = RETRY_FIRST_S
            while True:
                try:
                    await write()
                except Exception as exc:
                    if not is_transient(exc) or self._closing:
                        log.error("storing a chat turn in %s failed; the turn is lost: %s", key.room, describe(exc),
                                  exc_info=not is_transient(exc))
                        return
                    if pending.error is None:
                        log.error("storing a chat turn in %s failed (%s); kept, retried until the store can write",
                                  key.room, describe(exc))
                    pending.error = describe(exc)
                    self.hub.store.health.failed(exc, "chat history")
                    pending.tried.set()
                    pending.wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(pending.wake.wait(), delay)
                    delay = min(RETRY_MAX_S, delay * 2)
                    continue
                finally:
                    pending.tried.set()
                if pending.error is not None:
                    log.info("the chat turn kept for %s is saved now", key.room)
                    self.hub.store.health.ok()
                pending.error = None
                return

        pending.task = asyncio.create_task(run())
        self._pending[key] = pending
        pending.task.add_done_callback(
            lambda t: self._pending.pop(key, None) if self._pending.get(key) is pending else None)

    async def settled(self, key: ConversationKey | None = None) -> None:
        """Wait until finished turns (of one conversation, or all) are stored, or known to be unsaved
        for now (a full disk must not hang /status, /new or the budget: they read what is stored)."""
        pendings = [self._pending[key]] if key is not None and key in self._pending else (
            list(self._pending.values()) if key is None else [])
        for pending in pendings:
            if pending.task is None:
                continue
            tried = asyncio.ensure_future(pending.tried.wait())
            try:
                await asyncio.wait([pending.task, tried], return_when=asyncio.FIRST_COMPLETED)
            finally:
                tried.cancel()

    async def _storage_refusal(self, key: ConversationKey) -> str | None:
        """A turn is refused before any model call while SQLite cannot write: its answer, its cost rows
        (the spend caps count on them) and its history could not be stored."""
        pending = self._pending.get(key)
        if (pending is None or pending.error is None) and self.hub.store.health.state == "ok":
            return None
        try:
            await self.hub.store.probe()
        except StoreError as exc:
            full = self.hub.store.health.full
            return STORAGE_REFUSAL.format(
                what="Storage full" if full else "Storage unavailable", error=str(exc.__cause__ or exc),
                advice="Free space on the data disk (storage.data_dir)." if full else "Try again shortly.")
        kept = [p.task for p in self._pending.values() if p.error is not None and p.task is not None]
        for waiting in self._pending.values():
            waiting.wake.set()  # the store writes again: kept turns are saved now, before this one
        if kept:
            await asyncio.wait(kept, timeout=10)
        return None

    def _why_row(self, key: ConversationKey, route: str, reason: str) -> tuple[str, tuple]:
        line = f"{NAMES.get(route, route)} — {reason}"
        self._why[key] = line
        kv_key = WHY_KEY + json.dumps([key.bridge, key.room, key.thread])
        return ("INSERT INTO kv(key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "value=excluded.value, updated_at=excluded.updated_at", (kv_key, json.dumps(line), time.time()))

    async def _remember(self, key: ConversationKey, route: str, reason: str, calls: list,
                        ctx: Context | None = None) -> None:
        """A turn that produced no answer still records why it went where it went, and what it cost."""
        sql, params = self._why_row(key, route, reason)
        try:
            await self.hub.store.db.execute(sql, params)
            if _unsettled(calls) and ctx is not None:
                await Ledger.insert(self.hub.store.db, self.ledger.rows(_unsettled(calls), ctx, key.room))
        except sqlite3.Error as exc:  # the user still gets the turn's own message; the health check says why
            self.hub.store.health.failed(exc, "chat history")
            log.error("recording the failed turn in %s failed: %s", key.room, describe(exc))
            return

    def _failure_text(self, exc: Exception, turn: _Turn, policy: str) -> str:
        text = self._failure_core(exc, turn, policy)
        return f"{text} (Claude was not used: {turn.avoided}.)" if turn.avoided else text

    def _failure_core(self, exc: Exception, turn: _Turn, policy: str) -> str:
        if isinstance(exc, CloudRefused):
            return str(exc)
        if isinstance(exc, BudgetExceeded):
            return f"Claude was not called: {exc}."
        provider = getattr(exc, "provider", turn.current)
        if isinstance(exc, AuthFailed):
            return f"{_the(provider).capitalize()} refused our credentials ({plain_reason(exc)})."
        if provider == "local" and policy == "local-only":
            return (f"The local model is unavailable ({plain_reason(exc)}). This room is local-only, "
                    "so nothing was sent to the cloud.")
        return f"{_the(provider).capitalize()} failed ({plain_reason(exc)})."


def _the(provider: str) -> str:
    """"the local model", but "Claude" (a name takes no article)."""
    name = NAMES.get(provider, provider)
    return name if name[:1].isupper() else f"the {name}"


_EXC_NAME = re.compile(r"\s*\((?:[A-Z]\w*(?:Error|Exception|Timeout|Closed))\)|\b[A-Z]\w*(?:Error|Exception):\s*")
_PREFIX = re.compile(r"\b(?:local|cloud|anthropic|sglang): ")


def plain_reason(exc: Exception) -> str:
    """A short, readable reason: no provider prefixes, no exception class names, one line."""
    if isinstance(exc, StreamBroken):
        return "the connection dropped in the middle of the answer"
    text = _EXC_NAME.sub("", _PREFIX.sub("", str(exc))).strip()
    text = text.splitlines()[0].strip().rstrip(".") if text else ""
    if not text:
        return "it is unreachable" if isinstance(exc, ProviderUnavailable) else "an unexpected error"
    return text if len(text) <= 160 else text[:160] + "…"


def route_line(route: Route) -> str:
    return f"{NAMES.get(route.target, route.target)} — {route.reason}"


def _unsettled(calls: list) -> list:
    """The calls whose cost rows the turn still writes: cloud calls wrote theirs when settled."""
    return [c for c in calls if c[0] != PROVIDER_LABEL["cloud"]]
