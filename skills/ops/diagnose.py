"""`diagnose_sglang`: a read-only health report of the local LLM server (SGLang) for the operator."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field

from hub.config import HubConfig
from hub.gpu.api import DirectArbiter
from hub.jobs import SkillRun
from hub.registry import Permission, skill
from skills.ops import assess, dockerctl, signatures
from skills.ops.findings import SEVERITY_RANK, Finding
from skills.ops.sglang_probe import probe

log = logging.getLogger(__name__)


class DiagnoseParams(BaseModel):
    log_lines: int | None = Field(None, ge=1, le=1000, description="container log lines to show (default from config)")
    explain: bool = Field(True, description="add a short explanation from the local model when it is loaded")


class DiagnoseResult(BaseModel):
    status: Literal["healthy", "degraded", "down", "not_resident"]
    summary: str
    url: str
    residency: str
    findings: list[Finding] = Field(default_factory=list)
    metrics: dict[str, float | None] = Field(default_factory=dict)
    server: dict[str, Any] = Field(default_factory=dict)
    loads: Any = None
    health: dict[str, Any] = Field(default_factory=dict)
    container: dict[str, Any] | None = None
    log_tail: list[str] = Field(default_factory=list)
    explanation: str | None = None


def sglang_url(config: HubConfig) -> str:
    """Configured URL, else the LLM resident's base_url, else the root of `llm.local.base_url`."""
    ops = config.skills.ops
    if ops.sglang_url:
        return ops.sglang_url.rstrip("/")
    server = config.residents.servers.get(config.llm.local.resident)
    url = server.base_url if server is not None else config.llm.local.base_url
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")).rstrip("/")


def sglang_container(config: HubConfig) -> str | None:
    ops = config.skills.ops
    if ops.sglang_container:
        return ops.sglang_container
    name = config.llm.local.resident
    server = config.residents.servers.get(name)
    if server is not None and server.driver.type == "docker":
        return server.driver.container or server.driver.compose_service or name
    return None


def docker_url(config: HubConfig) -> str | None:
    """`skills.ops.docker_url`, else the LLM resident driver's Docker host, else the environment."""
    if config.skills.ops.docker_url:
        return config.skills.ops.docker_url
    server = config.residents.servers.get(config.llm.local.resident)
    return getattr(server.driver, "docker_host", None) if server is not None else None


def _api_key(config: HubConfig) -> str | None:
    secret = config.skills.ops.sglang_api_key or config.llm.local.api_key
    return secret.get_secret_value() if secret is not None else None


async def _explain(run: SkillRun, summary: str, timeout: float) -> str | None:
    """A few sentences from the local model (never the cloud); None when unavailable."""
    chat = run.hub.chat
    if chat is None or not hasattr(chat, "complete"):
        return None
    messages = [
        {"role": "system", "content": "You are the operator's assistant on a DGX Spark (GB10). Explain the "
                                      "SGLang diagnosis below in at most four sentences: the likely cause and "
                                      "the first thing to do. Do not invent facts."},
        {"role": "user", "content": summary},
    ]
    try:
        text = await asyncio.wait_for(chat.complete(messages, route="local", max_tokens=300, context=run.context),
                                      timeout)
    except Exception as exc:
        await run.log("local explanation unavailable", error=f"{type(exc).__name__}: {exc}")
        return None
    return (text or "").strip() or None


@skill(name="diagnose_sglang", command="diagnose", permission=Permission.read, timeout_s=120, est_seconds=3,
       description="Diagnose the local LLM server (SGLang): health, throughput, queue, KV cache, speculative "
                   "decoding, container state and log, known GB10 failure signatures and launch flags. Read-only.",
       params=DiagnoseParams, result=DiagnoseResult, long_running=True)
async def diagnose_sglang(run: SkillRun, params: DiagnoseParams) -> DiagnoseResult:
    config = run.config
    ops = config.skills.ops
    url = sglang_url(config)
    tail = params.log_lines or ops.log_lines
    name = config.llm.local.resident
    resident, reason = assess.residency(
        name, managed=not isinstance(run.hub.gpu, DirectArbiter), configured=name in config.residents.servers,
        snap=run.hub.gpu.snapshot())
    await run.progress(1, 4, "checking residency and the container")

    container_name = sglang_container(config)
    container = None
    docker_note: Finding | None = None
    if container_name:
        try:
            container = await asyncio.to_thread(
                dockerctl.inspect, docker_url(config), container_name, max(tail, ops.log_scan_lines))
        except Exception as exc:
            docker_note = Finding(id="docker_unavailable", severity="info",
                                  title=f"container state unknown: {exc}",
                                  fix="set skills.ops.docker_url (or DOCKER_HOST) so the hub can read the container")

    process_log: list[str] | None = None
    server = config.residents.servers.get(name)
    if container is None and server is not None and server.driver.type == "process" \
            and hasattr(run.hub.gpu, "logs"):
        try:
            process_log = (await run.hub.gpu.logs(name, max(tail, ops.log_scan_lines))).splitlines()
        except Exception as exc:
            await run.log("process log unavailable", error=f"{type(exc).__name__}: {exc}")

    await run.progress(2, 4, "probing the server")
    http = None
    if resident:
        http = await probe(url, api_key=_api_key(config), timeout=ops.http_timeout_s,
                           health_timeout=ops.health_timeout_s)

    await run.progress(3, 4, "matching failure signatures")
    sigs = signatures.load(ops.signatures_file)
    result = assess.assess(url=url, resident=resident, reason=reason, probe=http, container=container,
                           sigs=sigs, rules=ops.gb10_flags, log_tail=tail, process_log=process_log)
    if docker_note is not None:
        result.findings.append(docker_note)

    explanation = None
    serious = any(SEVERITY_RANK[f.severity] >= SEVERITY_RANK["warning"] for f in result.findings)
    if (params.explain and ops.explain and serious and http is not None and http.health.ok):
        explanation = await _explain(run, result.summary, ops.explain_timeout_s)
    await run.progress(4, 4, result.status)

    health: dict[str, Any] = {}
    if http is not None:
        health = {"status": http.health.status, "seconds": round(http.health.seconds, 3), "error": http.health.error}
    return DiagnoseResult(
        status=result.status, summary=result.summary + (f"\n\n{explanation}" if explanation else ""), url=url,
        residency=reason, findings=result.findings, metrics=result.metrics, server=result.server,
        loads=result.loads, health=health, container=container.summary() if container is not None else None,
        log_tail=container.log_lines[-tail:] if container is not None else [], explanation=explanation)
