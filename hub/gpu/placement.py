"""Placement over several nodes: which node's pool a lease waits in. Pure (no I/O, no clock).

Each node is one memory pool with its own `SchedState`, decided by the single-pool policy
(`hub.gpu.policy.decide`) as if it were the only box. This module adds only the two choices that
span nodes: where a new lease goes, and which node is the default resident's home (the one whose
idle return brings it back). Per-pool exclusivity, memory and the progress guarantee therefore
hold on every node by construction; hub/gpu/DESIGN.md ("Several nodes") states the rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from hub.gpu.model import Phase, ResidentState, SchedState
from hub.gpu.policy import remaining, swap_eta, victims_for

LOADED = (Phase.ready, Phase.starting)


@dataclass(frozen=True)
class Placement:
    """The node a lease waits on (None: no node can take it), and why, in words for the operator."""

    node: str | None
    reason: str


def candidates(pools: Mapping[str, SchedState], resident: str, allowed: Sequence[str],
               down: Mapping[str, str]) -> list[str]:
    """The allowed nodes, in the resident's order of preference, that are up and know the resident."""
    return [n for n in allowed if n in pools and n not in down and resident in pools[n].specs]


def _backlog(st: SchedState, resident: str, now: float) -> float:
    """Seconds of work already ahead of a new lease for `resident` on this pool."""
    spec = st.specs[resident]
    work = sum(j.est_seconds for j in st.queue if j.resident == resident)
    work += sum(remaining(j, now) for j in st.running_on(resident))
    return work / max(1, spec.concurrency)


def _swap_cost(st: SchedState, resident: str, now: float, default: str | None, default_elsewhere: bool) -> float:
    """What making `resident` ready on this pool costs the others: the swap itself, the work queued
    there for other residents (it competes), and, when the swap evicts the default resident and the
    default is loaded nowhere else, the default's load back."""
    cost = swap_eta(st, resident, now)
    cost += sum(j.est_seconds for j in st.queue if j.resident != resident)
    if default and default != resident and default in st.specs and not default_elsewhere \
            and st.phase(default) in LOADED:
        victims = victims_for(st, resident)
        if victims is None or default in victims:
            cost += st.cost_in(default)
    return cost


def place(pools: Mapping[str, SchedState], resident: str, allowed: Sequence[str], now: float, *,
          owner: str | None = None, default: str | None = None,
          down: Mapping[str, str] | None = None) -> Placement:
    """The node a new lease for `resident` waits on, among `allowed` (in order of preference):

    1. the node holding a declared follow-up's reservation for this owner (the pipeline keeps its
       place), or a conversation's while its resident is still loaded there (the next turn);
    2. a node where the resident is loaded (ready or starting), least backlog first;
    3. a node where leases for it already wait (its load is coming there), least backlog first;
    4. else the node whose swap costs least (the swap, other work queued there, and the default's
       return when the swap evicts the default and it is loaded nowhere else).
    Ties go to the earlier node in `allowed`. `down` names unreachable nodes (never chosen) and why."""
    down = down or {}
    cands = candidates(pools, resident, allowed, down)
    if not cands:
        why = "; ".join(f"{n}: {down[n]}" for n in allowed if n in down)
        unknown = [n for n in allowed if n not in pools]
        if unknown:
            why = "; ".join(x for x in (why, f"unknown node {', '.join(unknown)}") if x)
        return Placement(None, f"no node can run {resident} (allowed: {', '.join(allowed)})"
                         + (f": {why}" if why else ""))
    order = {n: i for i, n in enumerate(cands)}
    if owner is not None:
        for n in cands:
            if any(r.owner == owner and r.resident == resident and r.expires_at > now
                   and (not r.conversation or pools[n].phase(resident) in LOADED)
                   for r in pools[n].reservations):
                return Placement(n, f"the follow-up of {owner} keeps its place on {n}")
    loaded = [n for n in cands if pools[n].phase(resident) in LOADED]
    if loaded:
        best = min(loaded, key=lambda n: (_backlog(pools[n], resident, now), order[n]))
        return Placement(best, f"{resident} is {pools[best].phase(resident).value} on {best}")
    coming = [n for n in cands if any(j.resident == resident for j in pools[n].queue)]
    if coming:
        best = min(coming, key=lambda n: (_backlog(pools[n], resident, now), order[n]))
        return Placement(best, f"leases for {resident} already wait on {best}")
    elsewhere = {n for n in pools if n not in down and default in pools[n].specs
                 and pools[n].phase(default) in LOADED} if default else set()
    costs = {n: _swap_cost(pools[n], resident, now, default, bool(elsewhere - {n})) for n in cands}
    best = min(cands, key=lambda n: (costs[n], order[n]))
    return Placement(best, f"the cheapest swap to {resident} is on {best} (about {costs[best]:.0f} s)")


def default_home(pools: Mapping[str, SchedState], default: str | None, allowed: Sequence[str],
                 down: Mapping[str, str] | None = None) -> str | None:
    """The node whose pool treats `default` as its default resident (idle return, rent or buy):
    where it is loaded; else an allowed node with nothing loaded, queued or running; else the first
    allowed node that is up. Exactly one node (or none), so the default is kept loaded somewhere
    without filling every idle node with it."""
    if default is None:
        return None
    cands = candidates(pools, default, allowed, down or {})
    loaded = [n for n in cands if pools[n].phase(default) in LOADED]
    if loaded:
        return loaded[0]
    idle = [n for n in cands if not pools[n].queue and not pools[n].running
            and all(r.phase == Phase.stopped for r in pools[n].residents.values())]
    return (idle or cands or [None])[0]


def with_default(state: SchedState, default: str | None, home: bool) -> SchedState:
    """The pool's state with `default` marked as its default resident (or not): only the home node's
    idle return brings the default back."""
    if default is None or default not in state.specs or state.specs[default].default == home:
        return state
    specs = dict(state.specs)
    specs[default] = replace(specs[default], default=home)
    return replace(state, specs=MappingProxyType(specs))


def lose_node(state: SchedState, now: float, reason: str) -> SchedState:
    """A node stopped answering: nothing on it is loaded any more as far as the hub can tell, nothing
    runs or waits there (the shell revokes its leases and re-places its waiting ones), and its
    reservations are gone. Learned swap costs, pins and parked residents are kept for its return."""
    residents = {n: ResidentState(n, Phase.stopped, now, r.last_active, error=reason)
                 for n, r in state.residents.items()}
    return replace(state, residents=MappingProxyType(residents), queue=(), running=(), reservations=(),
                   unloads=())


def rejoin(state: SchedState, now: float) -> SchedState:
    """A node answers again: its residents start from stopped with no error; the shell then adopts the
    containers that still run (ready ones without a restart)."""
    residents = {n: ResidentState(n, Phase.stopped, now, r.last_active) for n, r in state.residents.items()}
    return replace(state, residents=MappingProxyType(residents))


def moves(pools: Mapping[str, SchedState], allowed: Mapping[str, Sequence[str]], now: float, *,
          down: Mapping[str, str] | None = None) -> list[tuple[str, str, str]]:
    """Waiting leases that should wait elsewhere, as (job id, from node, to node): a lease whose
    resident is stopped on its node, with no swap under way there (nothing starting or stopping),
    moves to an allowed node that is up where its resident is ready and could start it at once
    (free concurrency beyond what already waits there). Only towards a ready resident and only
    when it runs at once, so a lease moves at most a few times and never undoes a load; a granted
    lease is never moved (its job runs once), nor the rest of one that yielded at a checkpoint (its
    holder is inside the lease, talking to this node's server)."""
    down = down or {}
    spare = {(n, r): st.specs[r].concurrency - len(st.running_on(r)) - sum(1 for j in st.queue if j.resident == r)
             for n, st in pools.items() if n not in down
             for r, x in st.residents.items() if x.phase == Phase.ready}
    out: list[tuple[str, str, str]] = []
    for n, st in pools.items():
        if n in down or any(r.phase in (Phase.starting, Phase.stopping) for r in st.residents.values()):
            continue
        for j in sorted(st.queue, key=lambda j: (j.enqueued_at, j.id)):
            if st.phase(j.resident) != Phase.stopped or j.slices > 1:
                continue
            to = next((m for m in allowed.get(j.resident, ()) if m != n and spare.get((m, j.resident), 0) > 0), None)
            if to is not None:
                spare[(to, j.resident)] -= 1
                out.append((j.id, n, to))
    return out
