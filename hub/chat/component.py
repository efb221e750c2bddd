"""Hub component: builds the providers from config and attaches `hub.chat`."""

from __future__ import annotations

import os

from hub.chat.service import ChatService
from hub.llm.cloud import CloudProvider
from hub.llm.local import LocalProvider
from hub.privacy import PrivacyGate


def _secret(value) -> str | None:
    return value.get_secret_value() if value is not None else None


def build_providers(config, gate: PrivacyGate | None = None) -> tuple[LocalProvider, CloudProvider | None]:
    """The providers; the cloud one always carries the privacy gate, checked before every request."""
    local_cfg, cloud_cfg = config.llm.local, config.llm.cloud
    gate = gate or PrivacyGate.from_config(config)
    local = LocalProvider(base_url=local_cfg.base_url, model=local_cfg.model, api_key=_secret(local_cfg.api_key),
                          first_token_timeout_s=local_cfg.first_token_timeout_s,
                          stall_timeout_s=local_cfg.stall_timeout_s, max_retries=local_cfg.max_retries)
    cloud = None
    key = _secret(cloud_cfg.api_key) or os.environ.get("ANTHROPIC_API_KEY")
    if cloud_cfg.enabled and key:
        cloud = CloudProvider(model=cloud_cfg.model, api_key=key, base_url=cloud_cfg.base_url,
                              first_token_timeout_s=cloud_cfg.first_token_timeout_s,
                              stall_timeout_s=cloud_cfg.stall_timeout_s, max_retries=cloud_cfg.max_retries,
                              gate=gate)
    return local, cloud


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
