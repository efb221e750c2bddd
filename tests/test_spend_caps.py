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
from hub.context import Context
from hub.llm.types import Usage
from hub.store.db import Store
from tests.chat_helpers import RecordingSink, chat_bed
from tests.waiting import wait_until

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


async def test_a_reservation_is_a_pending_cost_row_that_counts_until_settled(tmp_path):
    store = await Store.open(tmp_path / "hub.db")
    try:
        ledger = Ledger(store.db, BudgetConfig(daily_usd=1.0, monthly_usd=1.0))
        ctx = Context.new("mcp")
        first = await ledger.reserve(0.6, provider="anthropic", model="m", context=ctx, room=None)
        with pytest.raises(BudgetExceeded, match=r"\$0.60 held by calls in flight"):
            await ledger.reserve(0.5, provider="anthropic", model="m", context=ctx, room=None)
        await ledger.settle(first, Usage(input_tokens=10, output_tokens=5), 0.1)  # cheaper than its worst case
        second = await ledger.reserve(0.5, provider="anthropic", model="m", context=ctx, room=None)
        state = await ledger.state()
        assert (state.spent_today_usd, state.reserved_usd) == (0.1, 0.5) and second.row_id != first.row_id
        rows = await store.db.execute_fetchall("SELECT input_tokens, usd, pending FROM costs ORDER BY id")
        assert [tuple(r) for r in rows] == [(10, 0.1, 0), (0, 0.5, 1)]
    finally:
        await store.close()
    assert BudgetState(0.5, 0.5, 1.0, 1.0, reserved_usd=0.4, reserved_month_usd=0.4).allows(0.1)
    assert not BudgetState(0.5, 0.5, 1.0, 1.0, reserved_usd=0.4, reserved_month_usd=0.4).allows(0.11)


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
        sink = RecordingSink()
        task = asyncio.create_task(bed.turn("!claude [[tokens 500]]", sink=sink))
        await wait_until(lambda: len(sink.of("delta")) >= 20, what="the first 20 tokens of the answer")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        [(input_tokens, output_tokens, usd)] = await _cloud_rows(bed)
        assert input_tokens > 0 and 5 <= output_tokens < 500 and usd > 0
        assert (await bed.hub.chat.budget()).reserved_usd == 0


@settings(max_examples=40, deadline=None)
@given(cap=st.floats(0.0, 2.0), ops=st.lists(st.tuples(st.floats(0.0, 0.8), st.floats(0.0, 1.0), st.booleans()),
                                             max_size=24))
def test_no_interleaving_of_calls_from_two_connections_passes_the_cap(tmp_path_factory, cap, ops):
    """Two ledgers on two connections to one database (the hub and `sovhub mcp`, say): at every
    moment the period's rows — settled and pending — stay within the cap."""

    async def scenario() -> None:
        path = tmp_path_factory.mktemp("ledger") / "hub.db"
        stores = [await Store.open(path), await Store.open(path)]
        ledgers = [Ledger(st.db, BudgetConfig(daily_usd=cap, monthly_usd=cap)) for st in stores]
        ctx = Context.new("cli")

        async def call(worst: float, share: float, other: bool) -> None:
            ledger = ledgers[int(other)]
            try:
                hold = await ledger.reserve(worst, provider="anthropic", model="m", context=ctx, room=None)
            except BudgetExceeded:
                return
            await asyncio.sleep(0)  # other calls reserve meanwhile
            await ledger.settle(hold, Usage(output_tokens=1), worst * share)  # real cost <= worst case

        async def total() -> float:
            rows = await stores[0].db.execute_fetchall("SELECT COALESCE(SUM(usd), 0) FROM costs")
            return float(rows[0][0])

        async def watch() -> None:
            for _ in range(len(ops) + 2):
                assert await total() <= cap + 1e-9
                await asyncio.sleep(0)  # a yield, so the watcher reads between the calls' steps

        try:
            await asyncio.gather(watch(), *(call(*op) for op in ops))
            assert await total() <= cap + 1e-9
            pending = await stores[1].db.execute_fetchall("SELECT COUNT(*) FROM costs WHERE pending = 1")
            assert pending[0][0] == 0
        finally:
            for store in stores:
                await store.close()

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


TURN_SCRIPT = """
import asyncio, sys
from hub.chat.api import ConversationKey, TurnRequest
from hub.config import load_config
from hub.context import Context
from hub.core import Hub
from tests.chat_helpers import RecordingSink

async def main():
    config = load_config(None, environ={}, overrides={"storage": {"data_dir": sys.argv[1]},
        "llm": {"local": {"base_url": "http://127.0.0.1:9/v1"},
                "cloud": {"base_url": sys.argv[2], "api_key": "sk-test", "max_retries": 0}}})
    hub = await Hub.start(config, components=("hub.chat.component",))
    await hub.chat.turn(TurnRequest(text="!claude [[tokens 2000]]", context=Context.new("cli"),
                                    conversation=ConversationKey("cli", "kill")), RecordingSink())

asyncio.run(main())
"""


@pytest.mark.slow
async def test_a_hub_killed_mid_call_leaves_the_worst_case_counted(tmp_path):
    import signal
    import sys
    from pathlib import Path

    async with chat_bed(tmp_path / "bed") as bed:
        await bed.post(bed.anthropic, "/_sim/config", {"tokens_per_s": 20})
        root = Path(__file__).resolve().parents[1]
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", TURN_SCRIPT, str(tmp_path / "data"), bed.anthropic.url, cwd=root,
            env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
        try:
            async def streaming() -> bool:
                return (await bed.stats(bed.anthropic))["streamed"] > 0

            await wait_until(streaming, timeout=60, what="the child's cloud call")
            # not a wait for a condition: the kill lands some way into a 100 s stream, not at its first byte
            await asyncio.sleep(0.5)
            child.send_signal(signal.SIGKILL)
            assert await asyncio.wait_for(child.wait(), 10) == -signal.SIGKILL
        finally:
            if child.returncode is None:
                child.kill()
        store = await Store.open(tmp_path / "data" / "sovhub.db")
        try:
            [(usd, pending)] = [tuple(r) for r in await store.db.execute_fetchall("SELECT usd, pending FROM costs")]
            state = await Ledger(store.db, BudgetConfig()).state()
        finally:
            await store.close()
        assert pending == 1 and usd > 0 and state.reserved_usd == pytest.approx(usd, abs=1e-5)  # still counted
