"""`skills.ops:` diagnostics and restarts for the box's operator, and the blog search index.

Most keys default to something derived from the rest of the config (the LLM resident's URL and
container, the MCP bridge's address, `skills.content.blog_dir`), so a working hub needs none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from hub.config.base import Section
from hub.config.sections import skill_config


class FlagRule(Section):
    """One launch flag of the known-good GB10 recipe (checked against `/server_info`)."""

    equals: Any = None
    one_of: list[Any] | None = None
    min: float | None = None
    max: float | None = None
    when: list[str] = Field(default_factory=list, description=(
        "check only when all hold: a server arg name (set and truthy) or `env:NAME` (container env truthy)"))
    why: str = ""

    @model_validator(mode="after")
    def one_kind(self) -> FlagRule:
        if self.equals is None and self.one_of is None and self.min is None and self.max is None:
            raise ValueError("a flag rule needs equals, one_of, min or max")
        return self


def _gb10_flags() -> dict[str, FlagRule]:
    return {
        "attention_backend": FlagRule(
            equals="triton", why="FlashInfer has no sm_121 kernels on the GB10 (unsupported architecture / OOM)"),
        "sampling_backend": FlagRule(equals="pytorch", why="FlashInfer sampling is absent on the GB10 builds"),
        "mem_fraction_static": FlagRule(
            min=0.6, max=0.85, why="above 0.85 leaves too little unified memory for activations and the OS"),
        "chunked_prefill_size": FlagRule(max=8192, why="large prefill chunks OOM on long prompts"),
        "tool_call_parser": FlagRule(equals="mistral", why="tool calls need the Mistral parser"),
        "enable_metrics": FlagRule(equals=True, why="/metrics (throughput, queue, retractions) needs it"),
        "speculative_eagle_topk": FlagRule(
            equals=1, when=["speculative_algorithm", "env:SGLANG_ENABLE_SPEC_V2"],
            why="the overlap scheduler for speculative decoding (SGLANG_ENABLE_SPEC_V2) requires topk 1"),
    }


class McpTarget(Section):
    """An MCP server `restart_mcp` may restart: a Docker container, or the hub's own MCP bridge."""

    kind: Literal["docker", "hub"] = "docker"
    container: str | None = Field(None, description="container name or id (kind docker)")
    url: str | None = Field(None, description="streamable HTTP endpoint; kind hub defaults to `mcp:`")
    token: SecretStr | None = None
    verify_timeout_s: float = Field(30, gt=0)
    stop_timeout_s: float = Field(10, ge=0)

    @model_validator(mode="after")
    def complete(self) -> McpTarget:
        if self.kind == "docker" and (not self.container or not self.url):
            raise ValueError("a docker target needs container and url")
        return self


@skill_config("ops")
class OpsSkillsConfig(Section):
    log_lines: int = Field(50, gt=0, description="container log lines shown in a diagnosis")
    log_scan_lines: int = Field(2000, gt=0, description="log lines scanned for failure signatures")
    sglang_url: str | None = Field(None, description="default: the LLM resident's base_url (or llm.local root)")
    sglang_container: str | None = Field(None, description="default: the LLM resident's driver container")
    sglang_api_key: SecretStr | None = Field(None, description="default: llm.local.api_key")
    docker_url: str | None = Field(None, description="e.g. unix:///var/run/docker.sock; default: environment")
    http_timeout_s: float = Field(5, gt=0)
    health_timeout_s: float = Field(25, gt=0, description="/health runs a 1-token generation (20 s in SGLang)")
    signatures_file: Path | None = Field(None, description="default: config/sglang_signatures.yaml")
    gb10_flags: dict[str, FlagRule] = Field(default_factory=_gb10_flags)
    explain: bool = Field(True, description="add a short local-model explanation when the LLM is resident")
    explain_timeout_s: float = Field(60, gt=0)
    mcp_targets: dict[str, McpTarget] = Field(default_factory=dict)
    restart_cooldown_s: float = Field(60, ge=0)
    hub_container: str | None = Field(None, description="the container the hub runs in (never restarted)")
    blog_content_dir: Path | None = Field(None, description="default: skills.content.blog_dir/src/content/blog")
