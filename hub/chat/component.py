"""Hub component: builds the providers from config and attaches `hub.chat`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.chat.service import ChatService
from hub.component import CHAT, GPU
from hub.llm.factory import cloud_provider, local_provider
from hub.privacy import PrivacyGate

if TYPE_CHECKING:
    from hub.llm.cloud import CloudProvider
    from hub.llm.local import LocalProvider


def build_providers(config, gate: PrivacyGate | None = None) -> tuple[LocalProvider, CloudProvider | None]:
    """The providers; the cloud one always carries the privacy gate, checked before every request."""
    gate = gate or PrivacyGate.from_config(config)
    return local_provider(config.llm.local), cloud_provider(config.llm.cloud, gate)


PROVIDES = (CHAT,)
NEEDS = (GPU,)  # the router reads the GPU scheduler's state


async def setup(hub) -> None:
    gate = PrivacyGate.from_config(hub.config)
    local, cloud = build_providers(hub.config, gate)
    service = ChatService(hub, local=local, cloud=cloud, gate=gate)
    await service.start()
    hub.chat = service


async def teardown(hub) -> None:
    if hub.chat is not None:
        await hub.chat.close()
        hub.chat = None
