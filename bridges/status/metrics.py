"""Prometheus metrics for the hub, fed by bus events and read from live state at scrape time.

Counters (turns, jobs, swaps) are folded from events as they happen; gauges (queue depth, the
resident, spend) are read at scrape time, so a scrape always shows the present. The exposition
is the Prometheus text format 0.0.4, written by hand to keep the hub free of a metrics library.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.events import Event

SWAP_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
JOB_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600)
# Event types of the chat service that carry the route a turn took (a turn is counted once).
TURN_EVENTS = ("turn_routed",)

Labels = tuple[tuple[str, str], ...]


def _labels(**kv: Any) -> Labels:
    return tuple(sorted((k, "" if v is None else str(v)) for k, v in kv.items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt_labels(labels: Iterable[tuple[str, str]]) -> str:
    items = list(labels)
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}"


def _fmt_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value)) if not float(value).is_integer() else f"{int(value)}"


@dataclass
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        self.total += value
        self.n += 1
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1


@dataclass
class Family:
    name: str
    kind: str  # counter | gauge | histogram
    help: str
    samples: dict[Labels, float | Histogram] = field(default_factory=dict)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        for labels, value in sorted(self.samples.items()):
            if isinstance(value, Histogram):
                for bound, count in zip(value.buckets, value.counts, strict=True):
                    lines.append(f"{self.name}_bucket{_fmt_labels((*labels, ('le', repr(float(bound)))))} {count}")
                lines.append(f"{self.name}_bucket{_fmt_labels((*labels, ('le', '+Inf')))} {value.n}")
                lines.append(f"{self.name}_sum{_fmt_labels(labels)} {_fmt_value(value.total)}")
                lines.append(f"{self.name}_count{_fmt_labels(labels)} {value.n}")
            else:
                lines.append(f"{self.name}{_fmt_labels(labels)} {_fmt_value(value)}")
        return lines


class HubMetrics:
    """Counters that live as long as the hub process (Prometheus handles restarts via resets)."""

    def __init__(self) -> None:
        self.turns: dict[Labels, float] = defaultdict(float)
        self.jobs: dict[Labels, float] = defaultdict(float)
        self.job_seconds: dict[Labels, Histogram] = {}
        self.swaps: dict[Labels, float] = defaultdict(float)
        self.swap_seconds: dict[Labels, Histogram] = {}
        self._seen_swaps: set[tuple] = set()
        self._seen_turns: set[str] = set()
        self._job_started: dict[str, float] = {}

    # -- event folding ---------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        data = event.data
        if event.type == "job_started":
            self._job_started[str(data.get("job_id"))] = event.time
        elif event.type == "job_finished":
            skill, status = data.get("skill"), data.get("status")
            self.jobs[_labels(skill=skill, status=status)] += 1
            started = self._job_started.pop(str(data.get("job_id")), None)
            if started is not None:
                hist = self.job_seconds.setdefault(_labels(skill=skill), Histogram(JOB_BUCKETS))
                hist.observe(max(0.0, event.time - started))
        elif event.type in TURN_EVENTS:
            self._fold_turn(event)

    def _fold_turn(self, event: Event) -> None:
        data = event.data
        key = str(data.get("turn_id") or event.context.id)
        if key in self._seen_turns:
            return
        if len(self._seen_turns) > 10000:
            self._seen_turns.clear()
        self._seen_turns.add(key)
        self.turns[_labels(route=data.get("route") or "unknown")] += 1

    def fold_swaps(self, swaps: Iterable[Mapping[str, Any]]) -> None:
        """Count each swap record of the GPU snapshot once (the history is a sliding window)."""
        for s in swaps:
            key = (s.get("resident"), s.get("phase"), s.get("at", s.get("started")), s.get("seconds"))
            if key in self._seen_swaps:
                continue
            self._seen_swaps.add(key)
            ok = "true" if s.get("ok", True) else "false"
            labels = _labels(resident=s.get("resident"), phase=s.get("phase") or "in", ok=ok)
            self.swaps[labels] += 1
            seconds = s.get("seconds")
            if isinstance(seconds, int | float):
                hist = self.swap_seconds.setdefault(
                    _labels(resident=s.get("resident"), phase=s.get("phase") or "in"), Histogram(SWAP_BUCKETS))
                hist.observe(float(seconds))

    # -- exposition ------------------------------------------------------------------------------
    def render(self, state: Mapping[str, Any]) -> str:
        """The whole exposition; `state` is the live status (see StatusService.collect)."""
        fams = [
            Family("sovhub_up", "gauge", "1 while the hub is running", {(): 1}),
            Family("sovhub_uptime_seconds", "gauge", "Seconds since the hub started",
                   {(): float(state.get("uptime_s") or 0)}),
            Family("sovhub_turns_total", "counter", "Chat turns by the route they took (local, cloud, ...)",
                   dict(self.turns)),
            Family("sovhub_tokens_total", "counter", "Model tokens by provider and direction (from the cost ledger)",
                   {_labels(provider=u["provider"], direction=d): float(u[f"{d}_tokens"] or 0)
                    for u in state.get("usage") or [] for d in ("input", "output")}),
            Family("sovhub_cost_usd_total", "counter", "Model spend in USD by provider (from the cost ledger)",
                   {_labels(provider=u["provider"]): float(u["usd"] or 0) for u in state.get("usage") or []}),
            Family("sovhub_jobs_total", "counter", "Finished jobs by skill and outcome", dict(self.jobs)),
            Family("sovhub_job_duration_seconds", "histogram", "Run time of jobs (start to finish) by skill",
                   dict(self.job_seconds)),
            Family("sovhub_jobs_running", "gauge", "Jobs running now", {(): len(state.get("running") or [])}),
            Family("sovhub_gpu_swaps_total", "counter",
                   "Resident-model swaps by resident, phase (in = start to ready, out = stop) and success",
                   dict(self.swaps)),
            Family("sovhub_gpu_swap_seconds", "histogram", "Duration of resident-model swaps",
                   dict(self.swap_seconds)),
        ]
        fams.extend(self._gauges(state))
        lines: list[str] = []
        for fam in fams:
            lines.extend(fam.render())
        return "\n".join(lines) + "\n"

    def _gauges(self, state: Mapping[str, Any]) -> list[Family]:
        gpu = state.get("gpu") or {}
        queue = gpu.get("queue") or []
        depth: dict[Labels, float] = defaultdict(float)
        for q in queue:
            depth[_labels(resident=q.get("resident"), job_class=q.get("job_class"))] += 1
        resident = gpu.get("resident")
        residents = {name: float(name == resident) for name in (state.get("residents") or {})}
        if resident and resident not in residents:
            residents[resident] = 1.0
        spend = state.get("spend") or {}
        spend_samples = {_labels(period=p): float(spend.get(f"{p}_usd") or 0) for p in ("today", "month")}
        cap_samples = {_labels(period=p): float(spend.get(f"{c}_cap_usd") or 0)
                       for p, c in (("today", "daily"), ("month", "monthly"))}
        storage = state.get("storage") or {}
        health = {_labels(backend=h["name"]): float(bool(h.get("ok")))
                  for h in state.get("backends") or [] if h.get("ok") is not None}
        fams = [
            Family("sovhub_gpu_queue_depth", "gauge", "Jobs waiting for the GPU (all residents)",
                   {(): float(len(queue))}),
            Family("sovhub_gpu_queue_jobs", "gauge", "Jobs waiting for the GPU by resident and job class",
                   dict(depth)),
            Family("sovhub_gpu_resident", "gauge", "1 for the resident model server now in memory",
                   {_labels(resident=k): v for k, v in residents.items()}),
            Family("sovhub_gpu_state", "gauge", "Scheduler state of the GPU (one label is 1)",
                   {_labels(state=gpu.get("state") or "unknown"): 1.0}),
            Family("sovhub_spend_usd", "gauge", "Cloud spend in USD for the current UTC day / month",
                   spend_samples),
            Family("sovhub_spend_cap_usd", "gauge", "Cloud spend caps in USD", cap_samples),
            Family("sovhub_backend_up", "gauge", "1 if the backend answered its health probe", health),
            Family("sovhub_storage_errors_total", "counter",
                   "SQLite writes that failed (disk full, lock held too long, ...) since the hub started",
                   {(): float(storage.get("errors_total") or 0)}),
            Family("sovhub_storage_ok", "gauge", "1 while the last SQLite write succeeded, 0 while writes fail",
                   {(): float(storage.get("state", "ok") == "ok")}),
        ]
        clients = state.get("clients") or []
        fams += [
            Family("sovhub_client_spend_usd", "gauge", "Model spend in USD this UTC month by client and origin",
                   {_labels(client=c["client"], origin=c["origin"]): float(c["month_usd"]) for c in clients}),
            Family("sovhub_client_tokens", "gauge", "Model tokens this UTC month by client, origin and direction",
                   {_labels(client=c["client"], origin=c["origin"], direction=d): float(c[f"{d}_tokens"])
                    for c in clients for d in ("input", "output")}),
        ]
        api = state.get("api")
        if isinstance(api, Mapping):
            requests = {_labels(client=name, route=r["route"], result=r["result"]): float(r["n"])
                        for name, c in (api.get("clients") or {}).items() for r in c.get("requests") or []}
            fams += [
                Family("sovhub_api_requests_total", "counter", "Gateway requests by client, route and result",
                       requests),
                Family("sovhub_api_waiting", "gauge", "Gateway requests waiting for the local model now",
                       {(): float(api.get("waiting") or 0)}),
                Family("sovhub_api_wait_seconds_total", "counter",
                       "Seconds gateway requests waited for the GPU, by client",
                       {_labels(client=name): float(c.get("wait_s_total") or 0)
                        for name, c in (api.get("clients") or {}).items()}),
            ]
        matrix = state.get("matrix")
        if isinstance(matrix, Mapping):
            numeric = {_labels(field=k): float(v) for k, v in matrix.items()
                       if isinstance(v, int | float) and not isinstance(v, bool)}
            numeric.update({_labels(field=k): float(v) for k, v in matrix.items() if isinstance(v, bool)})
            fams.append(Family("sovhub_matrix", "gauge", "Matrix bridge health figures (e.g. undecryptable events)",
                               numeric))
        return fams

