"""The GPU arbiter contract: who may use which resident model server, and when.

Skills and chat turns lease a resident through `hub.gpu`; the resident-model scheduler implements
it. Without configured residents the DirectArbiter grants every lease at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hub.context import Context


@dataclass(frozen=True)
class Lease:
    resident: str
    base_url: str | None = None
    yield_point: Callable[[float | None], Awaitable[None]] | None = field(default=None, repr=False, compare=False)

    async def checkpoint(self, done_share: float | None = None) -> None:
        """A point between two pieces of work (a podcast's speech chunks) where the holder could give
        the GPU away and pick up where it stopped. Returns at once unless the scheduler asked this
        lease to yield (a higher-class job would otherwise miss its bound); then the lease is
        released, queued again for the rest of the work (`done_share`: the part already done, for
        the estimate) and this call returns when it is granted again. Finished work is kept by the
        caller: nothing is redone. A lease that declared `checkpoint_s` should call it after every
        piece but the last."""
        if self.yield_point is not None:
            await self.yield_point(done_share)


@dataclass(frozen=True)
class QueuedJob:
    job_id: str
    resident: str
    job_class: str
    waited_s: float
    eta_s: float | None = None
    position: int = 0
    label: str = ""


@dataclass(frozen=True)
class GpuSnapshot:
    """What the router, the status page and `/status` read about the GPU."""

    resident: str | None = None
    state: str = "idle"  # idle | starting | ready | busy | stopping | failed
    busy_with: list[str] = field(default_factory=list)
    queue: list[QueuedJob] = field(default_factory=list)
    swaps: list[dict[str, Any]] = field(default_factory=list)
    residents: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # several nodes: each one's engine and pool

    def eta_for(self, resident: str) -> float | None:
        """Seconds until `resident` could serve a new interactive job (0 if ready now)."""
        if self.resident == resident and self.state in ("ready", "busy", "idle"):
            return 0.0
        info = self.residents.get(resident, {})
        return info.get("eta_s")


class GpuArbiter(Protocol):
    def lease(
        self,
        resident: str,
        *,
        job_id: str,
        context: Context,
        job_class: str = "skill",
        priority: int = 0,
        est_seconds: float = 5.0,
        then: str | None = None,
        label: str = "",
        checkpoint_s: float | None = None,
    ) -> contextlib.AbstractAsyncContextManager[Lease]: ...

    def snapshot(self) -> GpuSnapshot: ...


class DirectArbiter:
    """No scheduler: every lease is granted at once (unit tests, hubs without residents)."""

    def __init__(self, base_urls: dict[str, str] | None = None) -> None:
        self.base_urls = dict(base_urls or {})

    @contextlib.asynccontextmanager
    async def lease(self, resident: str, **_: Any) -> AsyncIterator[Lease]:
        yield Lease(resident=resident, base_url=self.base_urls.get(resident))

    def snapshot(self) -> GpuSnapshot:
        return GpuSnapshot(resident=None, state="idle")
