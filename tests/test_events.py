"""The bus never waits on listeners: plain ones run inline, coroutines become tracked tasks."""

from __future__ import annotations

import asyncio

from hub.context import Context
from hub.events import JOB_FINISHED, EventBus
from tests.waiting import wait_until


async def test_fire_returns_before_a_slow_listener_finishes_and_settle_waits_for_it():
    bus = EventBus()
    release, done = asyncio.Event(), []

    async def slow(event):
        await release.wait()
        done.append(event.data["job_id"])

    bus.listen(JOB_FINISHED, slow)
    await asyncio.wait_for(bus.fire(JOB_FINISHED, {"job_id": "j1"}, Context.new("cli")), 1.0)
    assert done == []  # the firer went on while the listener waits
    release.set()
    await bus.settle(5.0)
    assert done == ["j1"]


async def test_plain_listeners_run_inline_before_fire_returns():
    bus = EventBus()
    seen = []
    bus.listen("*", lambda e: seen.append(e.type))
    await bus.fire("job_started", {}, Context.new("cli"))
    assert seen == ["job_started"]


async def test_fire_and_wait_awaits_every_listener_in_order():
    bus = EventBus()
    order = []

    async def first(event):
        await asyncio.sleep(0.01)  # a listener that takes a while: the second must still come after it
        order.append("first")

    bus.listen("hub_stopping", first)
    bus.listen("hub_stopping", lambda e: order.append("second"))
    await bus.fire_and_wait("hub_stopping", {}, Context.new("cli"))
    assert order == ["first", "second"]


async def test_a_failing_listener_breaks_neither_the_firer_nor_the_other_listeners():
    bus = EventBus()
    seen = []

    async def boom(event):
        raise RuntimeError("listener bug")

    def bad(event):
        raise RuntimeError("plain bug")

    bus.listen("announcement", boom)
    bus.listen("announcement", bad)

    async def good(event):
        seen.append(event.data["text"])

    bus.listen("announcement", good)
    await bus.fire("announcement", {"text": "hi"}, Context.new("cron"))
    await wait_until(lambda: seen, what="the good listener")
    await bus.settle(1.0)
    assert seen == ["hi"]


async def test_settle_is_bounded_by_its_timeout():
    bus = EventBus()
    bus.listen("x", lambda e: asyncio.sleep(3600))  # a listener that never ends: what settle must bound
    await bus.fire("x", {}, Context.new("cli"))
    await asyncio.wait_for(bus.settle(0.05), 2.0)
