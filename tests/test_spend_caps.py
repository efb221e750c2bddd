"""Spend caps that cannot be raced, and aborted cloud streams that still cost what the API bills.
The witness is the ledger (the `costs` table) against the cap, with the Anthropic stand-in on a
real socket streaming slowly enough that the turns overlap."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.chat.api import BudgetState
from hub.chat.budget import BudgetExceeded, Ledger
from hub.config.routing import BudgetConfig
from tests.chat_helpers import chat_bed

CAP = 0.02


async def _cloud_rows(bed) -> list[tuple]:
    await bed.hub.chat.settled()
    rows = await bed.hub.store.db.execute_fetchall(
        "SELECT input_tokens, output_tokens, usd FROM costs WHERE provider = 'anthropic'")
    return [tuple(r) for r in rows]


@pytest.mark.slow
async def test_forty_concurrent_cloud_turns_never_spend_past_the_daily_cap(tmp_path):
    async with chat_bed(tmp_path, routing={"budget": {"daily_usd": CAP}},
                        llm={"cloud": {"max_tokens": 200}}) as bed:
        await bed.post(bed.anthropic, "/_sim/config", {"tokens_per_s": 300})
        outcomes = await asyncio.gather(*(bed.turn(f"!claude [[tokens 150]] n{i}", room=f"!r{i}:x")
                                          for i in range(40)))
        rows = await _cloud_rows(bed)
        spent = sum(r[2] for r in rows)
        went_cloud = [o for o, _ in outcomes if o.route == "cloud"]
        assert spent <= CAP and len(rows) == len(went_cloud) == await bed.cloud_requests()
        assert len(went_cloud) >= 3  # the cap was used, not just refused
        refused = [s for o, s in outcomes if o.route != "cloud"]
        assert refused and all("budget" in " ".join(s.of("notice") + s.of("fail")) for s in refused)
        state = await bed.hub.chat.budget()
        assert state.reserved_usd == 0 and state.spent_today_usd == pytest.approx(spent, abs=1e-6)


async def test_reservations_count_against_the_cap_and_release_only_frees_stored_spend(tmp_path):
    class NoRows:
        async def execute_fetchall(self, sql, params):
            return [(0.0, 0.0)]

    ledger = Ledger(NoRows(), BudgetConfig(daily_usd=1.0, monthly_usd=1.0))
    first = await ledger.reserve(0.6)
    with pytest.raises(BudgetExceeded, match=r"\$0.60 held by calls in flight"):
        await ledger.reserve(0.5)
    first.settle(0.1)  # the call cost less than its worst case: the difference is free again
    second = await ledger.reserve(0.5)
    await ledger.release([first, second])
    assert (await ledger.state()).reserved_usd == 0
    assert BudgetState(0.5, 0.5, 1.0, 1.0, reserved_usd=0.4).allows(0.1)
    assert not BudgetState(0.5, 0.5, 1.0, 1.0, reserved_usd=0.4).allows(0.11)


@pytest.mark.parametrize("fault", [{"kind": "error_event", "after_tokens": 6},
                                   {"kind": "disconnect", "after_tokens": 6}], ids=["sse-error", "disconnect"])
async def test_a_cloud_stream_that_breaks_midway_is_charged_for_what_it_produced(tmp_path, fault):
    async with chat_bed(tmp_path, local_alive=False) as bed:
        await bed.post(bed.anthropic, "/_sim/faults", {"add": [fault]})
        outcome, _ = await bed.turn("!claude [[tokens 40]]")
        assert outcome.error
        [(input_tokens, output_tokens, usd)] = await _cloud_rows(bed)
        assert input_tokens > 0 and output_tokens >= 6 and usd > 0
        assert (await bed.hub.chat.budget()).reserved_usd == 0


async def test_a_cancelled_cloud_turn_is_charged_for_the_tokens_already_streamed(tmp_path):
    async with chat_bed(tmp_path) as bed:
        await bed.post(bed.anthropic, "/_sim/config", {"tokens_per_s": 50})
        task = asyncio.create_task(bed.turn("!claude [[tokens 500]]"))
        while (await bed.hub.chat.budget()).reserved_usd == 0:  # noqa: ASYNC110 - waiting for the call
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.4)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        [(input_tokens, output_tokens, usd)] = await _cloud_rows(bed)
        assert input_tokens > 0 and 5 <= output_tokens < 500 and usd > 0
        assert (await bed.hub.chat.budget()).reserved_usd == 0


class StoredSpend:
    """The `costs` table's sums as the ledger reads them: whatever was stored so far."""

    def __init__(self) -> None:
        self.usd = 0.0

    async def execute_fetchall(self, sql, params):
        return [(self.usd, self.usd)]


@settings(max_examples=200, deadline=None)
@given(cap=st.floats(0.0, 2.0), ops=st.lists(st.tuples(st.floats(0.0, 0.8), st.floats(0.0, 1.0)), max_size=30))
def test_stored_spend_plus_reservations_never_pass_the_cap_whatever_the_interleaving(cap, ops):
    async def scenario() -> None:
        db = StoredSpend()
        ledger = Ledger(db, BudgetConfig(daily_usd=cap, monthly_usd=cap))

        async def call(worst: float, share: float) -> None:
            try:
                hold = await ledger.reserve(worst)
            except BudgetExceeded:
                return
            await asyncio.sleep(0)  # other calls reserve meanwhile
            hold.settle(worst * share)  # the real cost (or what a broken stream produced) <= the worst case
            await asyncio.sleep(0)
            db.usd += hold.usd  # the cost row is stored ...
            await ledger.release([hold])  # ... then the reservation stops counting

        async def watch() -> None:
            for _ in range(4 * len(ops) + 4):
                held = sum(h.usd for h in ledger._holds)
                assert db.usd + held <= cap + 1e-9
                await asyncio.sleep(0)

        await asyncio.gather(watch(), *(call(*op) for op in ops))
        assert db.usd <= cap + 1e-9 and not ledger._holds

    asyncio.run(scenario())


async def test_a_retried_cloud_call_is_charged_for_every_attempt(tmp_path):
    async with chat_bed(tmp_path, llm={"cloud": {"max_retries": 1}}) as bed:
        await bed.post(bed.anthropic, "/_sim/faults", {"add": [{"kind": "error_event", "after_tokens": 0}]})
        outcome, _ = await bed.turn("!claude hello there")
        assert outcome.route == "cloud" and not outcome.error and await bed.cloud_requests() == 2
        await bed.hub.chat.settled()
        [(input_tokens, cache_write, cache_read)] = [tuple(r) for r in await bed.hub.store.db.execute_fetchall(
            "SELECT input_tokens, cache_write_tokens, cache_read_tokens FROM costs WHERE provider = 'anthropic'")]
        # the broken first attempt wrote the prompt cache, the retry read it: both are billed
        assert cache_write > 0 and cache_read == cache_write and input_tokens > 0
