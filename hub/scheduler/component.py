"""Hub component: with residents configured, `hub.gpu` becomes the resident-model scheduler."""

from __future__ import annotations

from hub.scheduler.runtime import ResidentScheduler


async def setup(hub) -> None:
    cfg = hub.config.residents
    if not cfg.servers:
        return  # no residents: the core's DirectArbiter grants every lease at once
    scheduler = ResidentScheduler.from_config(cfg, state_dir=hub.config.storage.root / "residents",
                                              bus=hub.bus, store=hub.store)
    await scheduler.start()
    hub.gpu = scheduler
    hub.extras["gpu_scheduler"] = scheduler


async def teardown(hub) -> None:
    scheduler = hub.extras.pop("gpu_scheduler", None)
    if isinstance(scheduler, ResidentScheduler):
        await scheduler.close()
