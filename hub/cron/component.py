"""Hub component: `hub.cron` is the ScheduleService; it starts firing once the hub has started."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.component import CHAT, GPU, SCHEDULES
from hub.cron.service import ScheduleService

if TYPE_CHECKING:
    from hub.core import Hub


PROVIDES = (SCHEDULES,)
NEEDS = (GPU, CHAT)  # a slot runs skills that lease the GPU or ask the chat service


async def setup(hub: Hub) -> None:
    service = ScheduleService(hub)
    await service.open()
    hub.cron = service
    hub.extras["schedules"] = service  # its status() joins hub.status()


async def teardown(hub: Hub) -> None:
    service = hub.cron
    if isinstance(service, ScheduleService):
        await service.close()
    hub.extras.pop("schedules", None)
    hub.cron = None
