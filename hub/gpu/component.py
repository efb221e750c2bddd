"""Hub component: with residents configured, `hub.gpu` becomes the resident-model scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from hub.component import GPU

if TYPE_CHECKING:  # imported by `setup` when residents are configured: a hub without any never loads them
    from hub.gpu.model import Expected
    from hub.gpu.nodes import NodesScheduler
    from hub.gpu.runtime import ResidentScheduler

log = logging.getLogger(__name__)
PROVIDES = (GPU,)  # reads hub.cron lazily (preloading), so it needs nothing at start
EXPECT_POLL_S = 30.0  # how often the next fire times of the schedules are read
EXPECT_HORIZON_S = 24 * 3600.0


async def expected_arrivals(hub, horizon_s: float = EXPECT_HORIZON_S) -> list[Expected]:
    """The next fire time of each enabled schedule whose skill needs a resident (within the horizon):
    what the policy preloads for."""
    import time

    from hub.gpu.model import Expected

    service = getattr(hub, "cron", None)
    if service is None:
        return []
    now = time.time()
    out = []
    for sch in await service.list():
        if not sch.enabled or sch.next_run_at is None or sch.next_run_at > now + horizon_s:
            continue
        try:
            resident = hub.skills.get(sch.skill).resident
        except Exception:
            continue
        if resident:
            out.append(Expected(resident, sch.next_run_at, sch.name))
    return out


async def _feed_expected(hub, scheduler: ResidentScheduler | NodesScheduler, poll_s: float = EXPECT_POLL_S) -> None:
    """Keep the policy's view of the timetable fresh (a schedule added, paused or fired)."""
    while True:
        try:
            scheduler.expect(await expected_arrivals(hub))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("cannot read the schedules' next fire times for preloading: %s", exc)
        await asyncio.sleep(poll_s)


async def setup(hub) -> None:
    cfg = hub.config.residents
    if not cfg.servers:
        return  # no residents: the core's DirectArbiter grants every lease at once
    from hub.gpu.nodes import NodesScheduler
    from hub.gpu.runtime import ResidentScheduler

    kind = NodesScheduler if cfg.multi_node else ResidentScheduler  # one pool: exactly as before
    scheduler = kind.from_config(cfg, state_dir=hub.config.storage.root / "residents", bus=hub.bus, store=hub.store)
    await scheduler.start()
    hub.gpu = scheduler
    hub.extras["gpu_scheduler"] = scheduler
    scheduler._expect_task = asyncio.create_task(_feed_expected(hub, scheduler), name="gpu-expected")


async def teardown(hub) -> None:
    scheduler = hub.extras.pop("gpu_scheduler", None)
    if scheduler is not None:  # set by `setup` only
        task = getattr(scheduler, "_expect_task", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await scheduler.close()
