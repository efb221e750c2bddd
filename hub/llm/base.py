"""What every provider shares: retries before any output, and first-token / stall deadlines."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from hub.llm.errors import FirstTokenTimeout, LLMError, ProviderUnavailable, StallTimeout, StreamBroken
from hub.llm.retry import backoff
from hub.llm.types import Completion, Message, OnText, ToolChoice, ToolSpec, Usage


class Deadline:
    """One timer per call: first-token deadline until the first token, then a sliding stall window.

    A single `asyncio.timeout` rescheduled per chunk costs far less than `wait_for` per chunk.
    """

    def __init__(self, provider: str, first_token_s: float, stall_s: float) -> None:
        self.provider = provider
        self.first_token_s = first_token_s
        self.stall_s = stall_s
        self.started = False
        self.due = 0.0  # `tick()` has work to do from this loop time on (`now() >= due`)
        self._cm: asyncio.Timeout | None = None
        self.now = asyncio.get_running_loop().time

    def tick(self) -> None:
        """A token arrived: the stall window restarts from now.

        Rescheduling a timer per token is the costliest thing on the hot path, so the deadline is
        moved at most every tenth of the window, to 1.1 windows ahead: it fires after between 1
        and 1.1 windows of silence, never earlier. A hot loop may test `now() >= due` itself and
        call `tick()` only then (the same rule, without a call per token).
        """
        now = self.now()
        if now >= self.due and self._cm is not None:
            self.started = True
            self._cm.reschedule(now + self.stall_s * 1.1)
            self.due = now + self.stall_s * 0.1

    @contextlib.asynccontextmanager
    async def guard(self) -> AsyncIterator[Deadline]:
        try:
            async with asyncio.timeout(self.first_token_s) as cm:
                self._cm = cm
                yield self
        except TimeoutError:
            if self._cm is not None and self._cm.expired():
                if self.started:
                    raise StallTimeout(self.provider, f"no token for {self.stall_s:g} s (stalled)") from None
                raise FirstTokenTimeout(
                    self.provider, f"no first token within {self.first_token_s:g} s") from None
            raise


class Provider:
    """Base class: `stream()` retries `_once()` on retryable errors while nothing was delivered.

    `_once` raises typed errors whose `partial` is the text it already passed to `on_text`.
    """

    name = "provider"

    def __init__(self, *, model: str, first_token_timeout_s: float, stall_timeout_s: float,
                 max_retries: int, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.model = model
        self.first_token_timeout_s = first_token_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.max_retries = max_retries
        self.sleep = sleep
        self.retries = 0  # counted for tests and status

    async def stream(self, messages: list[Message], tools: list[ToolSpec], *, max_tokens: int,
                     on_text: OnText, context=None, meter: Usage | None = None,
                     tool_choice: ToolChoice | None = None) -> Completion:
        """One completion. `context` is the request's Context (the cloud provider's privacy gate
        reads it); `meter`, when given, accumulates the usage of every attempt as it is seen, so a
        call that is cancelled or breaks midway still reports what the provider will bill.
        `tool_choice` reaches providers whose `_once` takes it (the cloud provider's)."""
        self.admit(context)
        attempt = 0
        extra = {"tool_choice": tool_choice} if tool_choice is not None else {}
        while True:
            try:
                return await self._once(messages, tools, max_tokens, on_text, meter, **extra)
            except LLMError as exc:
                if exc.partial:  # text already reached the caller: never retried in place
                    if type(exc) is ProviderUnavailable:
                        raise StreamBroken(self.name, f"stream broke mid-answer ({exc})", partial=exc.partial) from exc
                    raise
                if not exc.retryable or attempt >= self.max_retries:
                    raise
                await self.sleep(backoff(attempt, getattr(exc, "retry_after", None)))
                attempt += 1
                self.retries += 1

    def admit(self, context) -> None:
        """Raises when this provider may not serve `context`; every provider may by default."""
        return None

    def deadline(self) -> Deadline:
        return Deadline(self.name, self.first_token_timeout_s, self.stall_timeout_s)

    async def _once(self, messages: list[Message], tools: list[ToolSpec], max_tokens: int,
                    on_text: OnText, meter: Usage | None = None) -> Completion:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None
