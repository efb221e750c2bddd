"""One factory for the LLM providers: config section in, provider out (chat, skills, benchmarks)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.llm.cloud import CloudProvider
    from hub.llm.local import LocalProvider
    from hub.privacy import PrivacyGate


def _secret(value) -> str | None:
    return value.get_secret_value() if value is not None else None


def local_provider(cfg) -> LocalProvider:
    """The local (SGLang) provider from `llm.local`."""
    from hub.llm.local import LocalProvider

    return LocalProvider(base_url=cfg.base_url, model=cfg.model, api_key=_secret(cfg.api_key),
                         first_token_timeout_s=cfg.first_token_timeout_s,
                         stall_timeout_s=cfg.stall_timeout_s, max_retries=cfg.max_retries)


def cloud_provider(cfg, gate: PrivacyGate) -> CloudProvider | None:
    """The cloud provider from `llm.cloud`, always carrying the privacy gate; None when disabled or keyless."""
    key = _secret(cfg.api_key) or os.environ.get("ANTHROPIC_API_KEY")
    if not (cfg.enabled and key):
        return None
    from hub.llm.cloud import CloudProvider

    return CloudProvider(model=cfg.model, api_key=key, base_url=cfg.base_url,
                         first_token_timeout_s=cfg.first_token_timeout_s, stall_timeout_s=cfg.stall_timeout_s,
                         max_retries=cfg.max_retries, gate=gate)
