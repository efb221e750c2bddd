"""Hub component: builds the providers from config and attaches `hub.chat`."""

from __future__ import annotations

import os

from hub.chat.service import ChatService
from hub.llm.cloud import CloudProvider
from hub.llm.local import LocalProvider


def _secret(value) -> str | None:
    return value.get_secret_value() if value is not None else None


def build_providers(config) -> tuple[LocalProvider, CloudProvider | None]:
    local_cfg, cloud_cfg = config.llm.local, config.llm.cloud
    local = LocalProvider(base_url=local_cfg.base_url, model=local_cfg.model, api_key=_secret(local_cfg.api_key),
                          first_token_timeout_s=local_cfg.first_token_timeout_s,
                          stall_timeout_s=local_cfg.stall_timeout_s, max_retries=local_cfg.max_retries)
    cloud = None
    key = _secret(cloud_cfg.api_key) or os.environ.get("ANTHROPIC_API_KEY")
    if cloud_cfg.enabled and key:
        cloud = CloudProvider(model=cloud_cfg.model, api_key=key, base_url=cloud_cfg.base_url,
                              first_token_timeout_s=cloud_cfg.first_token_timeout_s,
                              stall_timeout_s=cloud_cfg.stall_timeout_s, max_retries=cloud_cfg.max_retries)
    return local, cloud


async def setup(hub) -> None:
    local, cloud = build_providers(hub.config)
    service = ChatService(hub, local=local, cloud=cloud)
    await service.start()
    hub.chat = service


async def teardown(hub) -> None:
    if hub.chat is not None:
        await hub.chat.close()
        hub.chat = None
