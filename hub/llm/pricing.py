"""Cost of a call in USD from its usage and the configured per-million-token prices."""

from __future__ import annotations

from hub.config.llm import ModelPrice
from hub.llm.types import Usage


def cost_usd(usage: Usage, price: ModelPrice | None) -> float:
    if price is None:
        return 0.0
    return (usage.input_tokens * price.input_per_mtok + usage.output_tokens * price.output_per_mtok
            + usage.cache_write_tokens * price.cache_write_per_mtok
            + usage.cache_read_tokens * price.cache_read_per_mtok) / 1_000_000


def estimate_tokens(text: str) -> int:
    """About four characters a token: used for budgets and trimming, never billed."""
    return len(text) // 4 + 1
