"""`llm:` the local (SGLang, OpenAI API) and cloud (Anthropic) providers and their prices."""

from __future__ import annotations

from pydantic import Field, SecretStr

from hub.config.base import Section


class LocalLLMConfig(Section):
    base_url: str = "http://127.0.0.1:30000/v1"
    model: str = "mistral-small-4"
    api_key: SecretStr | None = None
    resident: str = Field("sglang", description="the resident model server that serves this model")
    context_window: int = Field(131072, gt=0)
    max_tokens: int = Field(2048, gt=0)
    first_token_timeout_s: float = Field(600, gt=0, description="local prefill of a long context is slow")
    stall_timeout_s: float = Field(60, gt=0)
    max_retries: int = Field(2, ge=0)


class ModelPrice(Section):
    input_per_mtok: float = Field(3.0, ge=0)
    output_per_mtok: float = Field(15.0, ge=0)
    cache_write_per_mtok: float = Field(3.75, ge=0)
    cache_read_per_mtok: float = Field(0.30, ge=0)


class CloudLLMConfig(Section):
    enabled: bool = True
    base_url: str | None = None
    model: str = "claude-sonnet-4-6"
    api_key: SecretStr | None = None
    context_window: int = Field(200000, gt=0)
    max_tokens: int = Field(4096, gt=0)
    first_token_timeout_s: float = Field(30, gt=0)
    stall_timeout_s: float = Field(30, gt=0)
    max_retries: int = Field(2, ge=0)
    prices: dict[str, ModelPrice] = Field(
        default_factory=lambda: {"claude-sonnet-4-6": ModelPrice(), "claude-sonnet-4-5": ModelPrice()},
        description="USD per million tokens, by model name")


class LLMConfig(Section):
    local: LocalLLMConfig = Field(default_factory=LocalLLMConfig)
    cloud: CloudLLMConfig = Field(default_factory=CloudLLMConfig)
    system_prompt: str = "You are sovhub, a helpful assistant running on a private AI box."
    max_tool_steps: int = Field(8, gt=0)
