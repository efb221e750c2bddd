"""One scheduler over several nodes: a `ResidentScheduler` per node's pool, and placement in front.

Each node (a machine with its own Docker engine and memory pool) runs the single-pool scheduler of
`hub.gpu.runtime` unchanged: its own loop, state, drivers (docker clients for that node's engine)
and the policy's rules. This module adds what spans nodes (`hub.gpu.placement` decides, purely):
which node a lease waits on, which node is the default resident's home, and the nodes' health. A
node whose engine stops answering for `down_after_s` is marked down: its running leases are revoked
(their jobs fail, never run twice), its waiting leases are placed on another allowed node or fail
with the reason; when it answers again its running containers are adopted, not restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from hub.config.residents import LOCAL_NODE, MemoryGuardConfig, ResidentsConfig
from hub.context import Context
from hub.dockerclient import TlsFiles, connect
from hub.errors import os_reason
from hub.gpu.api import GpuSnapshot, Lease, QueuedJob
from hub.gpu.model import Expected, Phase, SchedState
from hub.gpu.placement import default_home, moves, place, with_default
from hub.gpu.runtime import (
    COSTS_KEY,
    SNAPSHOT_KEY,
    ControlResult,
    GpuQueueFull,
    GpuUnavailable,
    LeaseMoved,
    NodeDown,
    ResidentScheduler,
)

log = logging.getLogger(__name__)

PUBLISH_S = 2.0  # how often the merged snapshot is written for `sovhub status`
MOVES_S = 0.5  # how often waiting leases are checked for a node where their resident is ready
PHASE_ORDER = {Phase.ready.value: 0, Phase.starting.value: 1, Phase.stopping.value: 2, Phase.stopped.value: 3}


def with_host(url: str, host: str | None) -> str:
    """`url` with its host replaced by `host` (port, path and scheme kept): a resident's URL on a node."""
    if not host:
        return url
    parts = urlsplit(url)
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    if parts.username:
        netloc = f"{parts.username}{':' + parts.password if parts.password else ''}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def node_config(cfg: ResidentsConfig, node: str, default_home_node: str | None) -> ResidentsConfig:
    """The single-pool config of one node: its pool and memory guard, the residents allowed on it with
    their URLs on its host and their docker driver pointed at its engine."""
    nc = cfg.node(node)
    guard = nc.memory_guard or (cfg.memory_guard if node == LOCAL_NODE else MemoryGuardConfig(enabled=False))
    data = cfg.model_dump(exclude={"nodes"})
    for name, r in cfg.servers.items():
        if node not in r.nodes:
            data.pop(name)
            continue
        d = data[name]
        d["nodes"] = [LOCAL_NODE]
        d["default"] = r.default and node == default_home_node
        d["base_url"] = with_host(r.base_url, nc.host)
        d["ready"]["url"] = with_host(r.ready.url, nc.host)
        if r.driver.type == "docker" and nc.docker_host:
            d["driver"].update(docker_host=nc.docker_host, use_ssh_client=nc.use_ssh_client,
                               tls=nc.tls.model_dump() if nc.tls else None)
    data["pool"] = nc.pool.model_dump()
    data["memory_guard"] = guard.model_dump()
    return ResidentsConfig.model_validate(data)


class _NodeStore:
    """The store as one node's scheduler sees it: learned costs per node (the local node keeps the
    single-node key), no snapshot (the merged one is written by `NodesScheduler`)."""

    def __init__(self, store, node: str) -> None:
        self.store, self.node = store, node

    def _key(self, key: str) -> str:
        return key if self.node == LOCAL_NODE else f"{key}.{self.node}"

    async def kv_get(self, key: str, default=None):
        return await self.store.kv_get(self._key(key), default)

    async def kv_set(self, key: str, value) -> None:
        if key != SNAPSHOT_KEY:
            await self.store.kv_set(self._key(key), value)


@dataclass
class Node:
    """One machine: its pool's scheduler and how to ask its engine whether it answers."""

    name: str
    scheduler: ResidentScheduler
    endpoint: str | None = None  # None: $DOCKER_HOST (the local engine)
    host: str | None = None
    tls: TlsFiles | None = None
    use_ssh_client: bool = True
    check_interval_s: float = 5.0
    down_after_s: float = 15.0
    watched: bool = True  # False: no docker resident on it (the hub's own box with process drivers)
    answered_at: float = 0.0
    since: float = 0.0  # when it went down or came back
    client: Any = field(default=None, repr=False)

    def ping(self) -> None:
        """Raises when the engine does not answer (runs in a worker thread)."""
        if self.client is None:
            self.client = connect(self.endpoint, timeout=max(2.0, min(10.0, self.down_after_s / 2)),
                                  tls=self.tls, use_ssh_client=self.use_ssh_client)
        try:
            self.client.ping()
        except Exception:
            with contextlib.suppress(Exception):
                self.client.close()
            self.client = None
            raise


class NodesScheduler:
    """`hub.gpu` when residents may run on more than one node: implements `hub.gpu.api.GpuArbiter`
    and the operator surface of `ResidentScheduler` (control, logs, snapshot, status, timeline)."""

    def __init__(self, nodes: list[Node], allowed: dict[str, list[str]], default: str | None = None, *,
                 bus=None, store=None, clock: Callable[[], float] = time.time) -> None:
        self.nodes = {n.name: n for n in nodes}
        self.allowed = allowed
        self.default = default
        self.bus = bus
        self.store = store
        self.clock = clock
        self._tasks: list[asyncio.Task] = []
        self._closed = False

    @classmethod
    def from_config(cls, cfg: ResidentsConfig, *, state_dir: Path, bus=None, store=None) -> NodesScheduler:
        allowed = {name: list(r.nodes) for name, r in cfg.servers.items()}
        default = cfg.default_resident
        home = allowed[default][0] if default else None
        nodes = []
        for name in cfg.node_names:
            if not any(name in a for a in allowed.values()):
                continue  # a node nothing may run on: no scheduler, no engine to watch
            nc = cfg.node(name)
            sched = ResidentScheduler.from_config(node_config(cfg, name, home), state_dir=state_dir / name, bus=bus,
                                                  store=_NodeStore(store, name) if store is not None else None)
            tls = TlsFiles(nc.tls.ca_cert, nc.tls.client_cert, nc.tls.client_key, nc.tls.verify) if nc.tls else None
            endpoint = nc.docker_host or _local_endpoint(cfg, name)
            watched = any(r.driver.type == "docker" for r in cfg.servers.values() if name in r.nodes)
            nodes.append(Node(name, sched, endpoint, nc.host, tls, nc.use_ssh_client, nc.check_interval_s,
                              nc.down_after_s, watched))
        return cls(nodes, allowed, default, bus=bus, store=store)

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Ask every engine first: one that does not answer starts down (its residents are not
        reconciled against a silent engine); the others adopt what runs on them."""
        now = self.clock()
        answers = await asyncio.gather(*(self._answers(n) for n in self.nodes.values()))
        for node, (ok, why) in zip(self.nodes.values(), answers, strict=True):
            node.answered_at = node.since = now
            if ok:
                await node.scheduler.start()
            else:
                node.scheduler.down = f"node {node.name} does not answer ({why})"
                log.warning("%s", node.scheduler.down)
                await node.scheduler.start()  # its loop waits; nothing is decided until it answers
                await self._fire("gpu_node_down", {"node": node.name, "error": node.scheduler.down})
        self._rehome()
        self._tasks = [asyncio.create_task(self._watch(n), name=f"gpu-node-{n.name}")
                       for n in self.nodes.values() if n.watched]
        self._tasks.append(asyncio.create_task(self._publisher(), name="gpu-nodes-publish"))

    async def close(self) -> None:
        self._closed = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for node in self.nodes.values():
            await node.scheduler.close()
            if node.client is not None:
                with contextlib.suppress(Exception):
                    node.client.close()
        await self._publish()

    # -- health -------------------------------------------------------------------------------
    async def _answers(self, node: Node) -> tuple[bool, str]:
        if not node.watched:
            return True, ""
        try:
            await asyncio.wait_for(asyncio.to_thread(node.ping), node.down_after_s)
            return True, ""
        except Exception as exc:  # unreachable, refused, a TLS or SSH failure: the engine does not answer
            return False, os_reason(exc) or type(exc).__name__

    async def _watch(self, node: Node) -> None:
        """Every `check_interval_s`: an engine silent for `down_after_s` marks its node down (so the
        residents there are down within down_after_s + check_interval_s + the ping's own timeout);
        one that answers again brings it back."""
        while not self._closed:
            ok, why = await self._answers(node)
            now = self.clock()
            if ok:
                node.answered_at = now
                if node.scheduler.down is not None:
                    await self._node_up(node)
            elif node.scheduler.down is None and now - node.answered_at >= node.down_after_s:
                await self._node_down(node, why)
            await asyncio.sleep(node.check_interval_s)

    async def _node_down(self, node: Node, why: str) -> None:
        if node.scheduler.down is not None:
            return
        reason = f"node {node.name} stopped answering ({why})"
        log.warning("%s: its residents are down, its waiting jobs go elsewhere", reason)
        node.since = self.clock()
        await node.scheduler.node_down(reason)
        await self._fire("gpu_node_down", {"node": node.name, "error": reason})
        self._rehome()

    async def _node_up(self, node: Node) -> None:
        log.info("node %s answers again: adopting what runs there", node.name)
        node.since = self.clock()
        await node.scheduler.node_up()
        await self._fire("gpu_node_up", {"node": node.name,
                                         "adopted": [n for n, r in node.scheduler.state.residents.items()
                                                     if r.phase != Phase.stopped]})
        self._rehome()

    def _down(self) -> dict[str, str]:
        return {n: node.scheduler.down for n, node in self.nodes.items() if node.scheduler.down is not None}

    def _pools(self) -> dict[str, SchedState]:
        return {n: node.scheduler.state for n, node in self.nodes.items()}

    def _rehome(self) -> None:
        """Exactly one node treats the default resident as its default (`placement.default_home`)."""
        if self.default is None:
            return
        home = default_home(self._pools(), self.default, self.allowed[self.default], self._down())
        for n, node in self.nodes.items():
            st = node.scheduler.state
            new = with_default(st, self.default, n == home)
            if new is not st:
                node.scheduler.state = new
                node.scheduler._kick()

    # -- the arbiter API ----------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lease(self, resident: str, *, job_id: str, context: Context, job_class: str = "skill",
                    priority: int = 0, est_seconds: float = 5.0, then: str | None = None,
                    label: str = "", checkpoint_s: float | None = None) -> AsyncIterator[Lease]:
        """Place the lease (`placement.place`) and wait on that node; a node that goes down before the
        lease is granted hands it back (`NodeDown`) and it is placed again, on another allowed node
        or failed with every node's reason. A waiting lease whose resident became ready on another
        allowed node with room for it moves there (`placement.moves`). A granted lease is never
        moved: its job runs once."""
        if self._closed:
            raise GpuUnavailable("the hub is stopping")
        if resident not in self.allowed:
            raise GpuUnavailable(f"unknown resident {resident!r} (configured: {', '.join(self.allowed)})")
        lost: dict[str, str] = {}
        moved: list[str] = []
        target: str | None = None
        async with contextlib.AsyncExitStack() as stack:
            while True:
                if target is not None and target not in self._down():
                    where, why = target, f"{resident} is ready on {target}: moved from {moved[-1]}"
                else:
                    p = place(self._pools(), resident, self.allowed[resident], self.clock(), owner=job_id,
                              default=self.default, down={**self._down(), **lost})
                    where, why = p.node, p.reason
                target = None
                if where is None:
                    await self._fire("gpu_job_failed", {"job_id": job_id, "resident": resident, "error": why},
                                     context)
                    raise GpuUnavailable(why)
                node = self.nodes[where]
                await self._fire("gpu_placed", {"job_id": job_id, "resident": resident, "node": where,
                                                "reason": why, "moved_from": sorted(lost) + moved}, context)
                try:
                    lease = await stack.enter_async_context(node.scheduler.lease(
                        resident, job_id=job_id, context=context, job_class=job_class, priority=priority,
                        est_seconds=est_seconds, then=then, label=label, checkpoint_s=checkpoint_s))
                except LeaseMoved as exc:  # never granted there: it waits where its resident is ready
                    moved.append(where)
                    target = exc.to
                    continue
                except NodeDown as exc:
                    lost[where] = str(exc)
                    continue
                except GpuQueueFull:
                    raise
                except GpuUnavailable as exc:
                    # a start that failed because the engine went away: that node is down, not the job
                    ok, why = await self._answers(node)
                    if ok or self._closed:
                        raise
                    await self._node_down(node, why or str(exc))
                    lost[where] = node.scheduler.down or str(exc)
                    continue
                finally:
                    self._rehome()
                break
            try:
                yield lease
            finally:
                self._kick_moves()

    def _kick_moves(self) -> None:
        """Move waiting leases to a node where their resident is ready and has room (`placement.moves`):
        the node hands the lease back (`LeaseMoved`) unless it was granted meanwhile."""
        for lease_id, src, dst in moves(self._pools(), self.allowed, self.clock(), down=self._down()):
            self.nodes[src].scheduler.withdraw(lease_id, LeaseMoved(f"moved to {dst}", dst))

    # -- operator controls --------------------------------------------------------------------
    def _target(self, resident: str | None) -> tuple[str | None, list[str]]:
        """`name@node` names one node; a bare name means every node it may run on."""
        if resident and "@" in resident:
            name, node = resident.rsplit("@", 1)
            return name, [node]
        return resident, list(self.allowed.get(resident, [])) if resident else list(self.nodes)

    async def control(self, op: str, resident: str | None = None, *, by: str = "operator",
                      seconds: float | None = None, context: Context | None = None) -> ControlResult:
        """The single-pool controls per node. `load`/`pin` go where a lease would (or `name@node`);
        `unload`/`unpin` apply wherever the resident is loaded or pinned."""
        name, nodes = self._target(resident)
        unknown = [n for n in nodes if n not in self.nodes]
        if unknown:
            return ControlResult(False, f"unknown node {', '.join(unknown)} (nodes: {', '.join(self.nodes)})")
        if name is not None and name not in self.allowed:
            return ControlResult(False, f"unknown resident {name!r} (configured: {', '.join(self.allowed)})")
        up = [n for n in nodes if self.nodes[n].scheduler.down is None]
        if not up:
            return ControlResult(False, "; ".join(self.nodes[n].scheduler.down or "" for n in nodes))
        if op in ("load", "pin") and name is not None:
            if len(up) > 1:
                p = place(self._pools(), name, up, self.clock(), default=self.default, down=self._down())
                up = [p.node] if p.node else up[:1]
            res = await self.nodes[up[0]].scheduler.control(op, name, by=by, seconds=seconds, context=context)
            return ControlResult(res.ok, f"{up[0]}: {res.message}" if len(self.nodes) > 1 else res.message)
        if op in ("unload", "unpin") and name is not None:
            now = self.clock()
            hits = [n for n in up if (op == "unload" and self.nodes[n].scheduler.state.phase(name)
                                      in (Phase.ready, Phase.starting))
                    or (op == "unpin" and self.nodes[n].scheduler.state.pin_of(name, now) is not None)]
            up = hits or up[:1]
        results = []
        for n in up:
            if op == "unload" and name is None and not any(
                    r.phase in (Phase.ready, Phase.starting) for r in self.nodes[n].scheduler.state.residents.values()):
                continue
            results.append((n, await self.nodes[n].scheduler.control(op, name, by=by, seconds=seconds,
                                                                     context=context)))
        if not results:
            return ControlResult(False, "nothing is loaded")
        return ControlResult(all(r.ok for _, r in results), "; ".join(f"{n}: {r.message}" for n, r in results))

    def expect(self, arrivals: list[Expected]) -> None:
        """Each scheduled arrival is seen ahead by the node a lease for it would be placed on."""
        pools, down = self._pools(), self._down()
        per: dict[str, list[Expected]] = {n: [] for n in self.nodes}
        for e in arrivals:
            if e.resident not in self.allowed:
                continue
            p = place(pools, e.resident, self.allowed[e.resident], self.clock(), default=self.default, down=down)
            if p.node is not None:
                per[p.node].append(e)
        for n, node in self.nodes.items():
            node.scheduler.expect(per[n])

    async def logs(self, resident: str, lines: int = 50) -> str:
        """The resident's server output on the node where it is loaded (or its first node; `name@node`)."""
        name, nodes = self._target(resident)
        if name not in self.allowed or any(n not in self.nodes for n in nodes):
            raise GpuUnavailable(f"unknown resident {resident!r} (configured: {', '.join(self.allowed)}; "
                                 f"name@node picks a node: {', '.join(self.nodes)})")
        loaded = [n for n in nodes if self.nodes[n].scheduler.state.phase(name) != Phase.stopped]
        return await self.nodes[(loaded or nodes)[0]].scheduler.logs(name, lines)

    # -- what the status surfaces read --------------------------------------------------------
    def snapshot(self) -> GpuSnapshot:
        """One view over the nodes: each resident as seen where it is most loaded (ready, starting,
        stopping, stopped; then node order) with its `node`; `nodes` has each node's engine and pool."""
        snaps = {n: node.scheduler.snapshot() for n, node in self.nodes.items()}
        residents: dict[str, dict[str, Any]] = {}
        for name, allowed in self.allowed.items():
            seen = [(n, snaps[n].residents[name]) for n in allowed if n in snaps and name in snaps[n].residents]
            if not seen:
                continue
            n, info = min(seen, key=lambda x: (PHASE_ORDER.get(x[1]["phase"], 9), allowed.index(x[0])))
            residents[name] = {**info, "node": n, "eta_s": min(i["eta_s"] for _, i in seen),
                               "on": {m: i["phase"] for m, i in seen}}
        ready = [name for name, r in residents.items() if r["phase"] == Phase.ready.value]
        moving = [name for name, r in residents.items() if r["phase"] in ("starting", "stopping")]
        current = (self.default if self.default in ready else None) or (ready or moving or [None])[0]
        if current is None:
            state = "failed" if any(s.state == "failed" for s in snaps.values()) else "idle"
        else:
            state = snaps[residents[current]["node"]].state
        queue = sorted((QueuedJob(**{**asdict(q), "label": f"{q.label} @{n}".strip()})
                        for n, s in snaps.items() for q in s.queue), key=lambda q: (-q.waited_s, q.job_id))
        queue = [QueuedJob(**{**asdict(q), "position": i + 1}) for i, q in enumerate(queue)]
        swaps = sorted(({**w, "node": n} for n, s in snaps.items() for w in s.swaps), key=lambda w: w["at"])[-20:]
        nodes = {n: {"up": node.scheduler.down is None, "error": node.scheduler.down,
                     "since": round(node.since, 1), "endpoint": _shown(node.endpoint), "host": node.host,
                     "memory_gb": node.scheduler.state.params.memory_gb,
                     "reserve_gb": node.scheduler.state.params.reserve_gb,
                     "resident": snaps[n].resident, "state": "down" if node.scheduler.down else snaps[n].state,
                     "residents": {r: i["phase"] for r, i in snaps[n].residents.items()},
                     "queue": len(snaps[n].queue), "busy_with": snaps[n].busy_with}
                 for n, node in self.nodes.items()}
        return GpuSnapshot(resident=current, state=state, busy_with=[b for s in snaps.values() for b in s.busy_with],
                           queue=queue, swaps=swaps, residents=residents, nodes=nodes)

    def metrics(self) -> dict[str, Any]:
        per = {n: node.scheduler.metrics() for n, node in self.nodes.items()}
        waits: dict[str, list[float]] = {}
        for node in self.nodes.values():
            for c, w in node.scheduler.waits.items():
                waits.setdefault(c, []).extend(w)
        from hub.stats import percentile

        return {"swaps": sum(m["swaps"] for m in per.values()),
                "swap_seconds": round(sum(m["swap_seconds"] for m in per.values()), 1),
                "wait_s": {c: {"n": sum(node.scheduler.wait_counts.get(c, 0) for node in self.nodes.values()),
                               "p50": round(percentile(w, 0.5), 1), "p95": round(percentile(w, 0.95), 1),
                               "max": round(max(w, default=0.0), 1)} for c, w in waits.items()},
                "nodes": per}

    def status(self) -> dict[str, Any]:
        return {**asdict(self.snapshot()), "metrics": self.metrics()}

    def timeline(self) -> list[tuple[float, str, str, Any]]:
        """Every node's timeline, residents named `name@node`, oldest first."""
        out = [(t, kind, f"{r}@{n}" if r else r, v)
               for n, node in self.nodes.items() for t, kind, r, v in node.scheduler.timeline()]
        return sorted(out, key=lambda x: x[0])

    @property
    def state(self) -> SchedState:
        """The pool of the default resident's home (what a single-node reader of `state` expects)."""
        home = default_home(self._pools(), self.default, self.allowed.get(self.default, []), self._down()) \
            if self.default else None
        return self.nodes[home or next(iter(self.nodes))].scheduler.state

    async def _publisher(self) -> None:
        published = 0.0
        while not self._closed:
            self._rehome()
            self._kick_moves()
            if self.clock() - published >= PUBLISH_S:
                published = self.clock()
                await self._publish()
            await asyncio.sleep(MOVES_S)

    async def _publish(self) -> None:
        if self.store is None:
            return
        try:
            await self.store.kv_set(SNAPSHOT_KEY, self.status())
        except Exception as exc:
            log.warning("cannot save the scheduler snapshot (%s): %s", SNAPSHOT_KEY, exc)

    async def _fire(self, event: str, data: dict[str, Any], context: Context | None = None) -> None:
        if self.bus is None:
            return
        await self.bus.fire(event, data, context or Context.new("cli"))


def _local_endpoint(cfg: ResidentsConfig, node: str) -> str | None:
    """The local node's engine when not configured: the residents' own driver.docker_host, if they agree."""
    if node != LOCAL_NODE:
        return None
    hosts = {r.driver.docker_host for r in cfg.servers.values() if LOCAL_NODE in r.nodes and r.driver.type == "docker"}
    return next(iter(hosts)) if len(hosts) == 1 else None


def _shown(endpoint: str | None) -> str:
    """The endpoint as the status surfaces show it (no password, should a URL ever carry one)."""
    if not endpoint:
        return "$DOCKER_HOST"
    parts = urlsplit(endpoint)
    if parts.password:
        return endpoint.replace(f":{parts.password}@", ":***@")
    return endpoint


__all__ = ["COSTS_KEY", "Node", "NodesScheduler", "node_config", "with_host"]
