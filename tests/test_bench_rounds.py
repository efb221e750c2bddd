"""Bench rounds: the goals are judged on the median round, the spread covers every round; and the
garbage-collector settings a running hub applies after start-up."""

from __future__ import annotations

import gc
import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.bench.rounds import summarise
from hub.heap import THRESHOLDS, GcMeter, settle_after_startup

figure = st.floats(min_value=0, max_value=1000, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(figure, figure), min_size=1, max_size=9), figure)
def test_goal_is_judged_on_the_median_round_and_the_spread_covers_all_rounds(pairs, limit):
    rounds = [{"p99": a, "p50": b} for a, b in pairs]
    out = summarise(rounds, rank="p99", goals={"p99": ("max", limit)})
    ranked = sorted(a for a, _ in pairs)
    assert out["p99"] == ranked[(len(ranked) - 1) // 2]
    assert out["p99"] <= statistics.median(ranked) or len(ranked) % 2 == 0
    assert out["spread"]["p99"] == [round(min(ranked), 3), round(max(ranked), 3)]
    assert out["ok"] == (out["p99"] <= limit) and bool(out["missed"]) != out["ok"]
    assert out["rounds"] == len(pairs)


def test_settling_after_startup_freezes_the_survivors_and_meters_collections():
    before = gc.get_threshold()
    try:
        assert settle_after_startup() > 0 and gc.get_freeze_count() > 0
        assert gc.get_threshold() == THRESHOLDS
        with GcMeter() as meter:
            gc.collect()
        assert meter.count[2] == 1 and meter.total_ms() >= 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
