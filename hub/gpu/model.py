"""Plain data for the scheduling policy: residents, jobs, the scheduler state and the actions.

Everything here is immutable so the policy stays a pure function of (state, now); the runtime and
the simulator build new states through `hub.gpu.reducers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

JOB_CLASSES = ("interactive", "skill", "scheduled")


class Phase(StrEnum):
    stopped = "stopped"
    starting = "starting"
    ready = "ready"
    stopping = "stopping"


@dataclass(frozen=True)
class ResidentSpec:
    """A model server that takes turns in the memory pool."""

    name: str
    kind: str = "other"
    memory_gb: float = 1.0
    default: bool = False
    pinned: bool = False
    exclusive: bool = False  # never loaded alongside another resident, whatever the memory figures say
    concurrency: int = 1
    swap_in_s: float = 60.0  # prior guess of start-to-ready time, until measured
    swap_out_s: float = 10.0  # prior guess of stop time (including memory coming back)
    ttl_s: float | None = None  # unload after this long idle when nothing waits (None: rent-or-buy only)
    queue_limit: int | None = None  # leases waiting for it above this are refused (429-style, with an ETA)


def _frozen(d: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True)
class PolicyParams:
    """Tunables of the sovhub policy (the baselines ignore most of them)."""

    memory_gb: float = 128.0
    reserve_gb: float = 8.0
    max_wait_s: Mapping[str, float] = field(default_factory=lambda: _frozen(
        {"interactive": 300.0, "skill": 1800.0, "scheduled": 7200.0}))
    class_rank: Mapping[str, float] = field(default_factory=lambda: _frozen(
        {"interactive": 100.0, "skill": 50.0, "scheduled": 0.0}))
    aging_per_s: float = 1.0 / 6.0  # effective priority gained per second of waiting
    lookahead: int = 6  # how many lower-ranked jobs for a resident may overtake a queued swap
    min_residency_s: float = 60.0
    busy_timeout_s: float = 600.0  # a job running this long past its estimate counts as hung
    anticipation_s: float = 15.0  # how long a declared follow-up (`then=`) holds its place
    conversation_s: float = 120.0  # after an interactive answer, its resident is kept this long for the next turn
    urgency_margin_s: float = 25.0  # act this long before a job would cross its max wait
    rent_factor: float = 1.0  # idle this many round trips of swaps before returning to the default
    swap_cost_alpha: float = 0.3  # weight of the newest measurement in the moving average
    pin_max_s: float = 4 * 3600.0  # the longest an operator may pin a resident (bounds what a pin delays)
    preload_margin_s: float = 30.0  # a preload aims to have the resident ready this long before its job
    min_slice_s: float = 30.0  # a lease with checkpoints runs at least this long before it may be asked to yield

    def max_wait(self, job_class: str) -> float:
        return float(self.max_wait_s.get(job_class, max(self.max_wait_s.values(), default=3600.0)))

    def rank(self, job_class: str) -> float:
        return float(self.class_rank.get(job_class, 0.0))


@dataclass(frozen=True)
class Job:
    """One lease request: a job (or one step of a pipeline job) that needs a resident."""

    id: str
    resident: str
    job_class: str = "skill"
    priority: float = 0.0
    est_seconds: float = 30.0
    enqueued_at: float = 0.0  # when this request was made (waits are measured from here)
    rank_since: float | None = None  # age origin for aging; a pipeline step inherits its parent's
    owner: str | None = None  # the hub job this lease belongs to (pipeline steps share it)
    then: str | None = None  # the resident of the follow-up step the owner will request next
    started_at: float | None = None
    overtaken: int = 0  # lower-ranked jobs dispatched past this one while it waited for a swap
    continues: bool = False  # the next step of a pipeline on the same resident (a lease continued)
    label: str = ""
    checkpoint_s: float | None = None  # declared work between two checkpoints: the lease may yield at one
    yield_asked: bool = False  # running: the policy asked it to release the GPU at its next checkpoint
    slices: int = 1  # which run of a lease this is (a lease resumed after a yield counts up)

    @property
    def age_origin(self) -> float:
        return self.enqueued_at if self.rank_since is None else self.rank_since


@dataclass(frozen=True)
class Reservation:
    """A place kept for a declared follow-up step (`then=`): it holds or prefetches a resident."""

    owner: str
    resident: str
    job_class: str
    priority: float
    rank_since: float
    expires_at: float
    after: str = ""  # the resident of the step that declared it
    conversation: bool = False  # kept after an interactive answer for the next turn (nothing declared)


@dataclass(frozen=True)
class Pin:
    """An operator's hold on a resident until `until`: it is loaded and nothing evicts it."""

    resident: str
    until: float
    by: str = ""
    since: float = 0.0


@dataclass(frozen=True)
class Expected:
    """A scheduled job the hub knows is coming (a schedule's next fire time and the resident it needs)."""

    resident: str
    at: float
    label: str = ""


@dataclass(frozen=True)
class ResidentState:
    name: str
    phase: Phase = Phase.stopped
    since: float = 0.0  # when the current phase began
    last_active: float = 0.0  # last dispatch or finish on this resident
    error: str | None = None  # why the last start failed
    failed_at: float | None = None
    fresh: bool = False  # ready and nothing dispatched on it yet: committed to the work it was loaded for


@dataclass(frozen=True)
class SwapRecord:
    resident: str
    phase: str  # "in" (start to ready) or "out" (stop to memory back)
    started: float
    seconds: float
    ok: bool = True
    reason: str = ""


@dataclass(frozen=True)
class SchedState:
    specs: Mapping[str, ResidentSpec]
    residents: Mapping[str, ResidentState]
    params: PolicyParams = field(default_factory=PolicyParams)
    queue: tuple[Job, ...] = ()
    running: tuple[Job, ...] = ()
    reservations: tuple[Reservation, ...] = ()
    swap_in_s: Mapping[str, float] = field(default_factory=_frozen)  # learned, per resident
    swap_out_s: Mapping[str, float] = field(default_factory=_frozen)
    pins: tuple[Pin, ...] = ()  # operator pins (expired ones are ignored, pruned by `prune`)
    unloads: tuple[str, ...] = ()  # operator unload requests the policy has accepted, not yet carried out
    parked: frozenset[str] = frozenset()  # unloaded by the operator: not brought back until work asks for it
    expected: tuple[Expected, ...] = ()  # scheduled arrivals seen ahead (for preloading)

    def pin_of(self, name: str, now: float) -> Pin | None:
        return next((p for p in self.pins if p.resident == name and p.until > now), None)

    @property
    def default(self) -> str | None:
        return next((n for n, s in self.specs.items() if s.default), None)

    def cost_in(self, name: str) -> float:
        return float(self.swap_in_s.get(name, self.specs[name].swap_in_s))

    def cost_out(self, name: str) -> float:
        return float(self.swap_out_s.get(name, self.specs[name].swap_out_s))

    def phase(self, name: str) -> Phase:
        r = self.residents.get(name)
        return r.phase if r else Phase.stopped

    def running_on(self, name: str) -> list[Job]:
        return [j for j in self.running if j.resident == name]


# -- actions: what the policy asks the shell to do ----------------------------------------------


@dataclass(frozen=True)
class Dispatch:
    """Grant the lease: the job may use its (ready) resident now."""

    job_id: str
    resident: str


@dataclass(frozen=True)
class Load:
    resident: str
    reason: str = ""


@dataclass(frozen=True)
class Unload:
    resident: str
    reason: str = ""


@dataclass(frozen=True)
class ForceUnload:
    """The resident is hung (busy past its timeout): stop it and fail the jobs still on it."""

    resident: str
    job_ids: tuple[str, ...]
    reason: str = ""


@dataclass(frozen=True)
class Yield:
    """Ask a running lease with checkpoints to release the GPU at its next checkpoint; it is queued
    again for the rest of its work (finished chunks are not redone)."""

    job_id: str
    reason: str = ""


@dataclass(frozen=True)
class Fail:
    job_id: str
    reason: str


@dataclass(frozen=True)
class WakeAt:
    """Call `decide` again at this time even if nothing else happens."""

    at: float


Action = Dispatch | Load | Unload | ForceUnload | Yield | Fail | WakeAt
