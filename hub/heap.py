"""The garbage collector after start-up: what a long-running hub does once it is ready.

Start-up leaves ~100k long-lived objects (modules, config, pydantic schemas, the skill registry).
CPython's full (generation 2) collection walks all of them, ~70 ms of CPU on the GB10's neighbours
and more under load, and it lands on whichever chat turn or MCP call happens to allocate at that
moment: it was the largest single item in a turn's CPU tail. `gc.freeze()` moves everything alive at
the end of start-up into the permanent generation, so later collections only walk what the hub
allocated since. Nothing is leaked: frozen objects were going to live for the whole process anyway.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field

# Young collections are cheap but frequent; a larger first threshold makes them rarer without making
# any one of them long (the objects of a turn are short-lived and mostly freed by reference counting).
THRESHOLDS = (5000, 20, 10)
# While the process starts nearly everything it allocates lives for good (modules, pydantic schemas):
# collecting it over and over while importing found nothing to free and cost ~10% of start-up's CPU.
STARTING_THRESHOLDS = (100_000, 50, 1000)


def while_starting() -> None:
    """Collect rarely until `settle_after_startup` (called first thing by the `sovhub` command)."""
    gc.set_threshold(*STARTING_THRESHOLDS)


def settle_after_startup() -> int:
    """Collect once, freeze the survivors, set the thresholds; returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    return gc.get_freeze_count()


@dataclass
class GcMeter:
    """Counts collections and their CPU time per generation (through `gc.callbacks`), so a bench
    can say how much of a slow turn was the collector."""

    ms: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    count: list[int] = field(default_factory=lambda: [0, 0, 0])
    _start: float = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.thread_time()
        else:
            gen = info["generation"]
            self.ms[gen] += (time.thread_time() - self._start) * 1000
            self.count[gen] += 1

    def __enter__(self) -> GcMeter:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def total_ms(self) -> float:
        return sum(self.ms)
