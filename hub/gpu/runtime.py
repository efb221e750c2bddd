"""The imperative shell around the pure policy: one async loop, the drivers, leases, events.

Facts (a lease asked for, a server ready, a container gone) go through the reducers into a new
state; `decide(state, now)` says what to do; the loop does it and sleeps until the next fact or
the policy's wake-up time. Only this module touches drivers, clocks and the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx

from hub.context import Context
from hub.errors import HubError
from hub.gpu import reducers as R
from hub.gpu.api import GpuSnapshot, Lease, QueuedJob
from hub.gpu.controls import admit, check_load, check_pin, check_unload, retry_after
from hub.gpu.drivers import Driver, make_driver
from hub.gpu.memory import MemoryGuard
from hub.gpu.model import (
    Dispatch,
    Expected,
    Fail,
    ForceUnload,
    Job,
    Load,
    Phase,
    PolicyParams,
    ResidentSpec,
    Unload,
    WakeAt,
    Yield,
)
from hub.gpu.placement import lose_node, rejoin
from hub.gpu.policy import decide, eta_by_job, ranked, swap_eta
from hub.gpu.readiness import wait_ready, warm_up
from hub.stats import percentile

log = logging.getLogger(__name__)

SNAPSHOT_KEY = "gpu.snapshot"
COSTS_KEY = "gpu.swap_costs"
TIMELINE_KEPT = 5000  # timeline points kept (phase changes, dispatches, queue depth)
WAITS_KEPT = 1000  # recent waits per class behind the metrics (a long-running hub must not grow)


class GpuUnavailable(HubError):
    """A lease could not be granted (the resident failed to start, or the hub is stopping)."""


class NodeDown(GpuUnavailable):
    """The node this lease waited on stopped answering before the lease was granted: the job never
    ran there, so it may wait on another node (`hub.gpu.nodes`)."""


class LeaseMoved(GpuUnavailable):
    """A waiting lease handed back so it can wait on another node (`to`), where its resident is ready:
    it was never granted here."""

    def __init__(self, message: str, to: str) -> None:
        super().__init__(message)
        self.to = to


class GpuQueueFull(GpuUnavailable):
    """429-style: the resident's queue is at its `queue_limit`; `retry_after_s` is the ETA."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class ControlResult:
    """The scheduler's answer to an operator request: accepted, or refused with the reason."""

    ok: bool
    message: str


@dataclass(frozen=True)
class ResidentRuntime:
    """What the shell needs per resident beyond the policy's spec."""

    base_url: str
    ready_url: str
    ready_status: int = 200
    warmup: bool = True
    start_timeout_s: float = 1800.0
    stall_timeout_s: float = 300.0
    stop_timeout_s: float = 60.0


def _pin_info(st, name: str, now: float) -> dict[str, Any] | None:
    pin = st.pin_of(name, now)
    if pin is not None:
        return {"by": pin.by, "until": round(pin.until, 1), "left_s": round(pin.until - now, 1)}
    return {"by": "config", "until": None, "left_s": None} if st.specs[name].pinned else None


class ResidentScheduler:
    """`hub.gpu` when residents are configured: implements `hub.gpu.api.GpuArbiter`."""

    def __init__(self, specs: list[ResidentSpec], runtimes: dict[str, ResidentRuntime], drivers: dict[str, Driver],
                 *, params: PolicyParams | None = None, guard: MemoryGuard | None = None, bus=None, store=None,
                 monitor_interval_s: float = 5.0, probe_poll_s: float = 0.5,
                 clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.state = R.initial_state(specs, params, clock())
        self.runtimes = runtimes
        self.drivers = drivers
        self.guard = guard or MemoryGuard(enabled=False)
        self.bus = bus
        self.store = store
        self.monitor_interval_s = monitor_interval_s
        self.probe_poll_s = probe_poll_s
        self._ids = itertools.count(1)
        self._waiters: dict[str, asyncio.Future] = {}
        self._contexts: dict[str, Context] = {}
        self._revoked: dict[str, str] = {}
        self._wake = asyncio.Event()
        self._facts: deque[tuple] = deque()  # what the tasks found out, for the loop to apply
        self._tasks: set[asyncio.Task] = set()
        self._loop_task: asyncio.Task | None = None
        self._monitor_task: asyncio.Task | None = None
        self._closed = False
        self.swaps: deque[dict[str, Any]] = deque(maxlen=50)
        self.swap_count = 0
        self.swap_seconds = 0.0
        self.waits: dict[str, deque[float]] = {}
        self.wait_counts: dict[str, int] = {}
        self._published = 0.0
        # the residency timeline: phase changes, dispatches, queue depth ([t, kind, resident, value])
        self.history: deque[tuple[float, str, str, Any]] = deque(maxlen=TIMELINE_KEPT)
        self._depth = -1
        self.down: str | None = None  # why this pool's node stopped answering; nothing is decided meanwhile

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, residents_cfg, *, state_dir: Path, bus=None, store=None) -> ResidentScheduler:
        cfg = residents_cfg
        specs, runtimes, drivers = [], {}, {}
        for name, r in cfg.servers.items():
            specs.append(ResidentSpec(
                name=name, kind=r.kind, memory_gb=r.memory_gb, default=r.default, pinned=r.pinned,
                exclusive=r.exclusive, ttl_s=r.ttl_s, queue_limit=r.queue_limit,
                concurrency=r.concurrency or (8 if r.kind == "llm" else 1),
                swap_in_s=r.swap_seconds, swap_out_s=min(r.stop_timeout_s, max(5.0, r.swap_seconds / 4))))
            runtimes[name] = ResidentRuntime(
                base_url=r.base_url, ready_url=r.ready.url, ready_status=r.ready.status, warmup=r.warmup,
                start_timeout_s=r.start_timeout_s, stall_timeout_s=r.stall_timeout_s, stop_timeout_s=r.stop_timeout_s)
            drivers[name] = make_driver(name, r, state_dir)
        params = PolicyParams(
            memory_gb=cfg.pool.memory_gb, reserve_gb=cfg.pool.reserve_gb, max_wait_s=dict(cfg.max_wait_s),
            min_residency_s=cfg.min_residency_s, lookahead=cfg.lookahead, busy_timeout_s=cfg.busy_timeout_s,
            anticipation_s=cfg.anticipation_s, pin_max_s=cfg.pin_max_s, preload_margin_s=cfg.preload_margin_s,
            conversation_s=cfg.conversation_s, min_slice_s=cfg.min_slice_s)
        g = cfg.memory_guard
        guard = MemoryGuard(enabled=g.enabled, meminfo=g.meminfo, command=g.command, timeout_s=g.timeout_s,
                            poll_s=g.poll_s, drop_caches=g.drop_caches)
        return cls(specs, runtimes, drivers, params=params, guard=guard, bus=bus, store=store,
                   monitor_interval_s=cfg.monitor_interval_s)

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Adopt what already runs (a hub restart never restarts a healthy resident), then loop."""
        if self.store is not None:
            costs = await self.store.kv_get(COSTS_KEY, {}) or {}
            self.state = replace(self.state, swap_in_s=MappingProxyType(dict(costs.get("in", {}))),
                                 swap_out_s=MappingProxyType(dict(costs.get("out", {}))))
        before = {n: Phase.stopped for n in self.state.residents}
        await self._reconcile()
        self._note_timeline(before, self.clock())
        self._loop_task = asyncio.create_task(self._run(), name="gpu-scheduler")
        self._monitor_task = asyncio.create_task(self._monitor(), name="gpu-monitor")

    async def close(self) -> None:
        """Stop deciding; leave the residents as they are (the next start adopts them)."""
        self._closed = True
        for task in (self._loop_task, self._monitor_task, *self._tasks):
            if task is not None:
                task.cancel()
        for task in (self._loop_task, self._monitor_task, *self._tasks):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(GpuUnavailable("the hub is stopping"))
        self._waiters.clear()
        for drv in self.drivers.values():
            closing = getattr(drv, "close", None)  # drivers holding connections (http_release) release them
            if closing is not None:
                with contextlib.suppress(Exception):
                    await closing()
        await self._publish(force=True)

    async def _reconcile(self) -> None:
        now = self.clock()
        for name, drv in self.drivers.items():
            try:
                running = await drv.is_running()
            except Exception as exc:
                log.warning("cannot check resident %s: %s", name, exc)
                continue
            if not running:
                continue
            if await self._probe(name):
                self.state = R.ready(self.state, name, now, measured=False)
                log.info("adopted resident %s (already running and ready)", name)
                await self._fire("gpu_adopted", {"resident": name})
            else:
                self.state = R.load_started(self.state, name, now)
                log.info("resident %s runs but is not ready yet: waiting for it", name)
                self._spawn(self._load(name, now, start=False))

    async def node_down(self, reason: str) -> None:
        """This pool's node stopped answering (`hub.gpu.nodes` watches its engine): running leases are
        revoked (their jobs fail, never run again), waiting ones fail with `NodeDown` (never granted:
        the caller may place them on another node), every resident counts as stopped, and nothing is
        decided until `node_up`. Facts still in flight are about phases that are over: dropped."""
        if self.down is not None:
            return
        self.down = reason
        now = self.clock()
        await self._revoke([j.id for j in self.state.running], reason)
        for j in self.state.queue:
            fut = self._waiters.pop(j.id, None)
            if fut is not None and not fut.done():
                fut.set_exception(NodeDown(reason))
        before = {n: r.phase for n, r in self.state.residents.items()}
        self.state = lose_node(self.state, now, reason)
        self._facts.clear()
        self._note_timeline(before, now)
        await self._publish(force=True)

    def withdraw(self, lease_id: str, error: GpuUnavailable) -> bool:
        """Hand a waiting lease back to its caller with `error` (it has not been granted: its job has
        not run); False when it is not waiting any more. The lease's own cleanup removes the job."""
        fut = self._waiters.get(lease_id)
        if fut is None or fut.done() or not any(j.id == lease_id for j in self.state.queue):
            return False
        del self._waiters[lease_id]
        fut.set_exception(error)
        return True

    async def node_up(self) -> None:
        """The node answers again: adopt what still runs there (a ready container is not restarted)."""
        if self.down is None:
            return
        self.down = None
        self.state = rejoin(self.state, self.clock())
        before = {n: Phase.stopped for n in self.state.residents}
        await self._reconcile()
        self._note_timeline(before, self.clock())
        self._kick()

    async def _probe(self, name: str) -> bool:
        rt = self.runtimes[name]
        async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=2.0)) as client:
            try:
                return (await client.get(rt.ready_url)).status_code == rt.ready_status
            except httpx.HTTPError:
                return False

    # -- the arbiter API ----------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lease(self, resident: str, *, job_id: str, context: Context, job_class: str = "skill",
                    priority: int = 0, est_seconds: float = 5.0, then: str | None = None,
                    label: str = "", checkpoint_s: float | None = None) -> AsyncIterator[Lease]:
        """Wait for `resident` and hold it. With `checkpoint_s` (the work between two checkpoints)
        the holder promises to call `Lease.checkpoint()` that often; the policy may then ask it to
        yield there to a higher-class job about to miss its bound (hub/gpu/DESIGN.md, the yield rule)."""
        if self._closed:
            raise GpuUnavailable("the hub is stopping")
        if self.down is not None:
            raise NodeDown(self.down)
        if resident not in self.state.specs:
            raise GpuUnavailable(f"unknown resident {resident!r} (configured: {', '.join(self.state.specs)})")
        lease_id = f"{job_id}#{next(self._ids)}"
        job = Job(id=lease_id, resident=resident, job_class=job_class, priority=float(priority),
                  est_seconds=float(est_seconds), enqueued_at=self.clock(), owner=job_id, then=then, label=label,
                  checkpoint_s=float(checkpoint_s) if checkpoint_s else None)
        if (full := admit(self.state, job, self.clock())) is not None:
            await self._fire("gpu_queue_full", {"job_id": job_id, "resident": resident, "error": full}, context)
            raise GpuQueueFull(full, retry_after(full))
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._waiters[lease_id] = fut
        self._contexts[lease_id] = context
        self.state = R.submit(self.state, job)
        await self._fire("gpu_queued", {"job_id": job_id, "resident": resident, "job_class": job_class,
                                        "eta_s": eta_by_job(self.state, self.clock()).get(lease_id)}, context)
        self._kick()
        try:
            lease = await fut
        except BaseException:
            self._waiters.pop(lease_id, None)
            self._contexts.pop(lease_id, None)
            self.state = R.remove(self.state, lease_id)
            self._kick()
            raise
        current = lease_id  # a lease that yielded is granted again under a new id

        async def yield_point(done_share: float | None) -> None:
            nonlocal current
            held = next((j for j in self.state.running if j.id == current), None)
            if held is None or not held.yield_asked:
                return
            rest_id = f"{job_id}#{next(self._ids)}"
            again: asyncio.Future = asyncio.get_running_loop().create_future()
            self._waiters[rest_id] = again
            self._contexts[rest_id] = context
            self._contexts.pop(current, None)
            self.state = R.yielded(self.state, current, self.clock(), rest_id, done_share or 0.0)
            current = rest_id
            await self._fire("gpu_yielded", {"job_id": job_id, "resident": resident, "slice": held.slices,
                                             "done_share": done_share}, context)
            self._kick()
            try:
                await again
            except BaseException:
                self._waiters.pop(rest_id, None)
                self.state = R.remove(self.state, rest_id)
                self._kick()
                raise

        ok = False
        try:
            yield replace(lease, yield_point=yield_point) if checkpoint_s else lease
            ok = True
        finally:
            self._contexts.pop(current, None)
            revoked = self._revoked.pop(current, None)
            if any(j.id == current for j in self.state.running):
                self.state = (R.finish(self.state, current, self.clock()) if ok
                              else R.remove(self.state, current))
            await self._fire("gpu_finished", {"job_id": job_id, "resident": resident, "ok": ok and not revoked,
                                              **({"error": revoked} if revoked else {})}, context)
            self._kick()

    # -- operator controls: requests the policy accepts or refuses with a reason ------------------
    async def control(self, op: str, resident: str | None = None, *, by: str = "operator",
                      seconds: float | None = None, context: Context | None = None) -> ControlResult:
        """`load`, `unload` (every loaded resident without a name), `pin` (for `seconds`) or
        `unpin`. Checks are pure (`hub.gpu.controls`); an accepted request enters the state
        through a reducer and `decide` carries it out by its rules (a load is an interactive job
        with no work, so bounds and the progress guarantee hold for it like for a chat turn)."""
        now = self.clock()
        st = self.state
        if op == "unload" and resident is None:
            names = [n for n, r in st.residents.items() if r.phase in (Phase.ready, Phase.starting)]
            if not names:
                return ControlResult(False, "nothing is loaded")
            results = [await self.control("unload", n, by=by, context=context) for n in names]
            return ControlResult(all(r.ok for r in results), "; ".join(r.message for r in results))
        if resident is None:
            return ControlResult(False, f"{op} needs a resident name (configured: {', '.join(st.specs)})")
        if op == "load":
            why = check_load(st, resident, now)
            if why is None:
                self._spawn(self._operator_load(resident, by, context))
                msg = f"loading {resident} (about {swap_eta(st, resident, now):.0f} s)"
            else:
                msg = why
        elif op == "unload":
            why = check_unload(st, resident, now)
            if why is None:
                self.state = R.request_unload(st, resident)
            msg = why or f"unloading {resident}"
        elif op == "pin":
            secs = float(seconds or 0)
            why = check_pin(st, resident, secs, now)
            if why is None:
                self.state = R.pin(st, resident, now + secs, by, now)
                if self.state.phase(resident) == Phase.stopped:
                    self._spawn(self._operator_load(resident, by, context))
            msg = why or f"{resident} pinned by {by} for {secs / 60:.0f} min"
        elif op == "unpin":
            pin = st.pin_of(resident, now)
            why = None if pin else f"{resident} is not pinned"
            if why is None:
                self.state = R.unpin(st, resident)
            msg = why or f"{resident} unpinned (was pinned by {pin.by})"
        else:
            why = msg = f"unknown GPU control {op!r} (load, unload, pin, unpin)"
        await self._fire("gpu_control", {"op": op, "resident": resident, "by": by, "ok": why is None,
                                         "message": msg}, context)
        self._kick()
        return ControlResult(why is None, msg)

    async def _operator_load(self, resident: str, by: str, context: Context | None) -> None:
        """A load request is a lease of the interactive class with no work: the policy decides."""
        ctx = context.child() if context else Context.new("cli", user=by)
        with contextlib.suppress(GpuUnavailable):
            async with self.lease(resident, job_id=f"operator-load-{next(self._ids)}", context=ctx,
                                  job_class="interactive", est_seconds=0.0, label=f"load by {by}"):
                pass

    def expect(self, arrivals: list[Expected]) -> None:
        """The scheduled jobs seen ahead (next fire time and resident of each enabled schedule)."""
        self.state = R.expect(self.state, arrivals)
        self._kick()

    async def logs(self, resident: str, lines: int = 50) -> str:
        """The last lines of a resident's server output (docker: the container's log; process: its log file)."""
        if resident not in self.drivers:
            raise GpuUnavailable(f"unknown resident {resident!r} (configured: {', '.join(self.drivers)})")
        return await self.drivers[resident].tail(lines)

    def snapshot(self) -> GpuSnapshot:
        st, now = self.state, self.clock()
        phases = {n: r.phase for n, r in st.residents.items()}
        current = next((n for n, p in phases.items() if p == Phase.ready), None) \
            or next((n for n, p in phases.items() if p in (Phase.starting, Phase.stopping)), None)
        if current is None:
            state = "failed" if any(r.error for r in st.residents.values()) and st.queue else "idle"
        elif phases[current] == Phase.ready:
            state = "busy" if st.running_on(current) else "ready"
        else:
            state = phases[current].value
        etas = eta_by_job(st, now)
        queue = [QueuedJob(job_id=j.owner or j.id, resident=j.resident, job_class=j.job_class,
                           waited_s=round(now - j.enqueued_at, 1), eta_s=round(etas.get(j.id, 0.0), 1),
                           position=i + 1, label=j.label)
                 for i, j in enumerate(ranked(st.queue, st.params, now))]
        residents = {n: {"kind": st.specs[n].kind, "phase": r.phase.value, "memory_gb": st.specs[n].memory_gb,
                         "eta_s": round(swap_eta(st, n, now), 1), "swap_in_s": round(st.cost_in(n), 1),
                         "swap_out_s": round(st.cost_out(n), 1), "default": st.specs[n].default,
                         "error": r.error, "ttl_s": st.specs[n].ttl_s, "queue_limit": st.specs[n].queue_limit,
                         "pinned": _pin_info(st, n, now), "parked": n in st.parked}
                     for n, r in st.residents.items()}
        return GpuSnapshot(resident=current, state=state, busy_with=[j.owner or j.id for j in st.running],
                           queue=queue, swaps=list(self.swaps)[-20:], residents=residents)

    def metrics(self) -> dict[str, Any]:
        return {"swaps": self.swap_count, "swap_seconds": round(self.swap_seconds, 1),
                "wait_s": {c: {"n": self.wait_counts.get(c, len(w)), "p50": round(percentile(list(w), 0.5), 1),
                               "p95": round(percentile(list(w), 0.95), 1), "max": round(max(w, default=0.0), 1)}
                           for c, w in self.waits.items()}}

    def status(self) -> dict[str, Any]:
        return {**asdict(self.snapshot()), "metrics": self.metrics()}

    # -- the loop ----------------------------------------------------------------------------
    def _kick(self) -> None:
        self._wake.set()

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        while not self._closed:
            self._wake.clear()
            wake_at = None
            changed = False
            try:
                changed = await self._absorb()
                now = self.clock()
                self.state = R.prune(self.state, now)
                before = {n: r.phase for n, r in self.state.residents.items()}
                for action in ([] if self.down is not None else decide(self.state, now)):
                    if isinstance(action, WakeAt):
                        wake_at = action.at
                    else:
                        changed |= await self._apply(action, now)
                self._note_timeline(before, now)
                await self._publish(force=changed)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler step failed")
            if changed:
                continue
            timeout = 30.0 if wake_at is None else min(30.0, max(0.01, wake_at - self.clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _apply(self, action, now: float) -> bool:
        st = self.state
        if isinstance(action, Dispatch):
            if any(f[0] == "died" and f[1] == action.resident for f in self._facts) \
                    or not await self._alive(action.resident):
                # died since its last health check: never hand it a lease; the queue reloads it
                self._post("died", action.resident, self.state.residents[action.resident].since,
                           f"resident {action.resident} stopped unexpectedly (found at dispatch)")
                return True
            st = self.state  # fresh after the await: the lease may have been cancelled meanwhile
            job = next((j for j in st.queue if j.id == action.job_id), None)
            if job is None or st.phase(job.resident) != Phase.ready:
                return True
            fut = self._waiters.pop(job.id, None)
            if fut is None or fut.done():
                self.state = R.remove(st, job.id)
                return True
            self.state = R.dispatch(st, job.id, now)
            self.history.append((round(now, 3), "job", job.resident, job.owner or job.id))
            waited = now - job.enqueued_at
            self._note_wait(job.job_class, waited)
            fut.set_result(Lease(resident=job.resident, base_url=self.runtimes[job.resident].base_url))
            await self._fire("gpu_started", {"job_id": job.owner, "resident": job.resident,
                                             "waited_s": round(waited, 2)}, self._contexts.get(job.id))
            bound = st.params.max_wait(job.job_class)
            if waited > bound:
                log.warning("lease for %s waited %.0f s, past its %s bound of %.0f s",
                            job.owner, waited, job.job_class, bound)
                await self._fire("gpu_wait_exceeded", {"job_id": job.owner, "resident": job.resident,
                                                       "job_class": job.job_class, "waited_s": round(waited, 1),
                                                       "bound_s": bound}, self._contexts.get(job.id))
            return True
        if isinstance(action, Fail):
            job = next((j for j in st.queue if j.id == action.job_id), None)
            self.state = R.remove(st, action.job_id)
            fut = self._waiters.pop(action.job_id, None)
            if fut is not None and not fut.done():
                fut.set_exception(GpuUnavailable(action.reason))
            await self._fire("gpu_job_failed", {"job_id": job.owner if job else action.job_id,
                                                "error": action.reason}, self._contexts.get(action.job_id))
            return True
        if isinstance(action, Yield):
            job = next((j for j in st.running if j.id == action.job_id), None)
            if job is None or job.yield_asked:
                return False
            self.state = R.ask_yield(st, action.job_id)  # the lease gives way at its next checkpoint
            await self._fire("gpu_yield_asked", {"job_id": job.owner, "resident": job.resident,
                                                 "reason": action.reason}, self._contexts.get(job.id))
            return True
        if isinstance(action, Load):
            if st.phase(action.resident) != Phase.stopped:
                return False
            self.state = R.load_started(st, action.resident, now)
            await self._fire("gpu_swapping", {"to": action.resident, "reason": action.reason},
                             self._cause(action.resident))
            self._spawn(self._load(action.resident, now))
            return True
        if isinstance(action, Unload | ForceUnload):
            if st.phase(action.resident) != Phase.ready:
                return False
            if isinstance(action, ForceUnload):
                await self._revoke(action.job_ids, action.reason)
            self.state = R.stop_started(self.state, action.resident, now)
            await self._fire("gpu_swapping", {"from": action.resident, "reason": action.reason})
            self._spawn(self._unload(action.resident, now))
            return True
        return False

    def _cause(self, resident: str) -> Context | None:
        for j in ranked(self.state.queue, self.state.params, self.clock()):
            if j.resident == resident and j.id in self._contexts:
                return self._contexts[j.id].child()
        return None

    async def _revoke(self, lease_ids, reason: str) -> None:
        """Running leases lost their server: their jobs fail (their requests error) with this notice."""
        for lid in lease_ids:
            job = next((j for j in self.state.running if j.id == lid), None)
            self._revoked[lid] = reason
            self.state = R.remove(self.state, lid)
            await self._fire("gpu_lease_revoked", {"job_id": job.owner if job else lid, "error": reason},
                             self._contexts.get(lid))

    # -- tasks: slow work off the loop; each reports its outcome as a fact ------------------------
    def _post(self, kind: str, name: str, since: float, *rest) -> None:
        """Hand a fact to the loop: only the loop writes `self.state` (one writer, no read of the state
        after an await gates a write). `since` names the phase the fact is about; a stale one is dropped."""
        self._facts.append((kind, name, since, self.clock(), *rest))
        self._kick()

    def _note_timeline(self, before: dict[str, Phase], now: float) -> None:
        for n, r in self.state.residents.items():
            if before.get(n) != r.phase:
                self.history.append((round(r.since, 3), "phase", n, r.phase.value))
        depth = len(self.state.queue)
        if depth != self._depth:
            self._depth = depth
            self.history.append((round(now, 3), "queue", "", depth))

    def timeline(self) -> list[tuple[float, str, str, Any]]:
        """Phase changes, dispatches and queue depth, oldest first (the status page draws them)."""
        return list(self.history)

    async def _absorb(self) -> bool:
        """Apply the facts the tasks reported, in order; True if any changed the state."""
        changed = False
        before = {n: r.phase for n, r in self.state.residents.items()}
        try:
            return await self._absorb_facts(changed)
        finally:
            self._note_timeline(before, self.clock())

    async def _absorb_facts(self, changed: bool) -> bool:
        while self._facts:
            kind, name, since, at, *rest = self._facts.popleft()
            r = self.state.residents[name]
            if r.since != since:
                continue  # about a phase that is over (e.g. a crash found twice)
            if kind == "ready" and r.phase == Phase.starting:
                measured, warm = rest
                self.state = R.ready(self.state, name, at, measured=measured)
                self._record(name, "in", since, at)
                await self._fire("gpu_ready", {"resident": name, "seconds": round(at - since, 2), "warmup": warm})
                await self._save_costs()
            elif kind == "load_failed" and r.phase == Phase.starting:
                (reason,) = rest
                self.state = R.load_failed(self.state, name, at, reason)
                self._record(name, "in", since, at, ok=False, reason=reason)
                await self._fire("gpu_start_failed", {"resident": name, "error": reason})
            elif kind == "stopped" and r.phase == Phase.stopping:
                self.state = R.stopped(self.state, name, at)
                self._record(name, "out", since, at)
                await self._fire("gpu_stopped", {"resident": name, "seconds": round(at - since, 2)})
                await self._save_costs()
            elif kind == "died" and r.phase == Phase.ready:
                (reason,) = rest
                await self._revoke([j.id for j in self.state.running_on(name)], reason)
                self.state = R.crashed(self.state, name, at, reason)
                log.warning("%s", reason.splitlines()[0])
                await self._fire("gpu_resident_crashed", {"resident": name, "error": reason})
            else:
                continue
            changed = True
        return changed

    async def _alive(self, name: str) -> bool:
        try:
            return await self.drivers[name].is_running()
        except Exception as exc:
            log.warning("cannot check resident %s: %s", name, exc)
            return True  # no reading: the lease's own request will tell

    async def _load(self, name: str, began: float, start: bool = True) -> None:
        rt, drv, spec = self.runtimes[name], self.drivers[name], self.state.specs[name]
        try:
            if start:
                ok, waited = await self.guard.wait_for(spec.memory_gb)
                if not ok:
                    log.warning("memory for %s not back after %.0f s; starting anyway", name, waited)
                    await self._fire("gpu_memory_warning", {"resident": name, "waited_s": round(waited, 1)})
                if not await drv.is_running():
                    await drv.start()
            await wait_ready(drv, rt.ready_url, rt.ready_status, start_timeout_s=rt.start_timeout_s,
                             stall_timeout_s=rt.stall_timeout_s, poll_s=self.probe_poll_s)
            warm = await warm_up(spec.kind, rt.base_url) if rt.warmup else "off"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = str(exc) if isinstance(exc, HubError) else f"{type(exc).__name__}: {exc}"
            log.warning("resident %s failed to start: %s", name, reason)
            with contextlib.suppress(Exception):
                await drv.stop(rt.stop_timeout_s)
            self._post("load_failed", name, began, reason)
        else:
            self._post("ready", name, began, start, warm)

    async def _unload(self, name: str, began: float) -> None:
        rt, drv = self.runtimes[name], self.drivers[name]
        try:
            await drv.stop(rt.stop_timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("stopping resident %s: %s", name, exc)
        self._post("stopped", name, began)

    async def _monitor(self) -> None:
        """A ready resident whose server died: report it; the loop fails its leases and recovers."""
        while not self._closed:
            await asyncio.sleep(self.monitor_interval_s)
            for name, r in list(self.state.residents.items()):
                if self.down is not None or r.phase != Phase.ready or await self._alive(name):
                    continue
                tail = ""
                with contextlib.suppress(Exception):
                    tail = (await self.drivers[name].tail(5)).strip()
                reason = f"resident {name} stopped unexpectedly" + (f"; last log lines:\n{tail}" if tail else "")
                self._post("died", name, r.since, reason)

    # -- records ---------------------------------------------------------------------------
    def _note_wait(self, job_class: str, waited: float) -> None:
        """Keep the last WAITS_KEPT waits per class (the metrics are percentiles of recent waits)."""
        self.waits.setdefault(job_class, deque(maxlen=WAITS_KEPT)).append(waited)
        self.wait_counts[job_class] = self.wait_counts.get(job_class, 0) + 1

    def _record(self, name: str, phase: str, began: float, ended: float, ok: bool = True, reason: str = "") -> None:
        seconds = round(ended - began, 2)
        if phase == "in":
            self.swap_count += 1
        self.swap_seconds += seconds
        self.swaps.append({"resident": name, "phase": phase, "at": round(began, 2), "seconds": seconds, "ok": ok,
                           **({"error": reason} if reason else {})})

    async def _save_costs(self) -> None:
        if self.store is None:
            return
        try:
            await self.store.kv_set(COSTS_KEY, {"in": dict(self.state.swap_in_s), "out": dict(self.state.swap_out_s)})
        except Exception as exc:  # the learned costs are a cache: keep scheduling, but say so
            log.warning("cannot save the learned swap costs (%s): %s", COSTS_KEY, exc)

    async def _publish(self, force: bool = False) -> None:
        """Keep `gpu.snapshot` in the store fresh for `sovhub status` (another process)."""
        if self.store is None or (not force and self.clock() - self._published < 2.0):
            return
        self._published = self.clock()
        try:
            await self.store.kv_set(SNAPSHOT_KEY, self.status())
        except Exception as exc:  # `sovhub status` shows a stale snapshot: say why, once per failure
            log.warning("cannot save the scheduler snapshot (%s): %s", SNAPSHOT_KEY, exc)

    async def _fire(self, event: str, data: dict[str, Any], context: Context | None = None) -> None:
        if self.bus is None:
            return
        await self.bus.fire(event, data, context or Context.new("cli"))
