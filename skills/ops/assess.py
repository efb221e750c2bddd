"""The pure part of `diagnose_sglang`: probes + container + log in, status, findings and summary out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.gpu.api import GpuSnapshot
from skills.ops import flags, prom, signatures
from skills.ops.config import FlagRule
from skills.ops.dockerctl import ContainerInfo
from skills.ops.findings import SEVERITY_RANK, Finding, worst
from skills.ops.sglang_probe import HttpProbe


@dataclass
class Assessment:
    status: str  # healthy | degraded | down | not_resident
    findings: list[Finding]
    metrics: dict[str, float | None] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    loads: Any = None
    summary: str = ""


def residency(resident_name: str, managed: bool, configured: bool, snap: GpuSnapshot) -> tuple[bool, str]:
    """Is the LLM loaded according to the scheduler, and why not (readable)?"""
    if not managed or not configured:
        return True, "not managed by the resident scheduler; probing the server directly"
    if snap.resident == resident_name:
        return True, f"{resident_name} is resident (state {snap.state})"
    holder = snap.resident or "no model server"
    parts = [f"{resident_name} is not resident: {holder} holds the GPU (state {snap.state})"]
    if snap.busy_with:
        parts.append(f"busy with {', '.join(snap.busy_with)}")
    waiting = [q for q in snap.queue if q.resident == resident_name]
    if waiting:
        first = waiting[0]
        eta = f", ETA {first.eta_s:.0f} s" if first.eta_s is not None else ""
        parts.append(f"{len(waiting)} job(s) waiting for {resident_name} (first: {first.label or first.job_id}, "
                     f"waited {first.waited_s:.0f} s{eta})")
    info = snap.residents.get(resident_name) or {}
    details = [f"{k} {info[k]}" for k in ("phase", "state", "error", "eta_s") if info.get(k) not in (None, "")]
    if details:
        parts.append(f"{resident_name}: " + ", ".join(details))
    if snap.swaps:
        last = snap.swaps[-1]
        outcome = "ok" if last.get("ok", True) else f"failed{': ' + str(last['error']) if last.get('error') else ''}"
        parts.append(f"last swap: {last.get('resident', '?')} {last.get('phase', '')} "
                     f"({last.get('seconds', '?')} s, {outcome})")
    return False, "; ".join(parts)


def _health_findings(probe: HttpProbe) -> list[Finding]:
    h = probe.health
    if h.ok:
        return []
    if not probe.reachable:
        return [Finding(id="unreachable", severity="critical",
                        title=f"nothing answers at {probe.url}", evidence=[f"GET /health: {h.error}"],
                        fix="start the SGLang container (or check its port and the configured sglang_url)")]
    if h.status is None:
        return [Finding(id="health_timeout", severity="error",
                        title="/health (a 1-token generation) did not answer in time: the scheduler is stuck "
                              "or overloaded", evidence=[f"GET /health: {h.error}"],
                        fix="look in the log for the first error; restart the container if it persists")]
    if h.status == 503:
        return [Finding(id="health_503", severity="critical",
                        title="/health answers 503: the server is up but cannot generate (still loading, "
                              "shutting down, or the scheduler/detokenizer is hung)",
                        evidence=[f"GET /health: 503 in {h.seconds:.2f} s"],
                        fix="if it is not loading, restart the container and check the log for the first error")]
    return [Finding(id="health_status", severity="error", title=f"/health answers {h.status}",
                    evidence=[f"GET /health: {h.status}"],
                    fix="401 means an API key is required: set skills.ops.sglang_api_key"
                        if h.status == 401 else "check the server log")]


def _container_findings(c: ContainerInfo | None, tail: int, resident: bool) -> list[Finding]:
    if c is None:
        return []
    if not resident:
        return [Finding(id="container_state", severity="info", title=f"container {c.name}: {c.status} "
                        "(expected while the LLM is not resident)" if c.found else f"no container {c.name!r}")]
    if not c.found:
        return [Finding(id="container_missing", severity="info", title=f"no container named {c.name!r}",
                        fix="set skills.ops.sglang_container (or the resident's driver.container)")]
    out = []
    if c.status != "running":
        code = f", exit code {c.exit_code}" if c.exit_code is not None else ""
        out.append(Finding(id="container_not_running", severity="critical",
                           title=f"container {c.name} is {c.status}{code}" + (f": {c.error}" if c.error else ""),
                           evidence=c.log_lines[-min(tail, 10):],
                           fix="read the last log lines above; start it again (the scheduler does this on "
                               "the next LLM request)"))
    if c.oom_killed:
        out.append(Finding(id="container_oom_killed", severity="critical",
                           title=f"container {c.name} was killed by the kernel OOM killer",
                           fix="lower --mem-fraction-static (0.7-0.8) and --max-running-requests"))
    return out


def _metric_findings(m: Mapping[str, float | None], server_args: Mapping[str, Any]) -> list[Finding]:
    out = []
    retracted = m.get("num_retracted_reqs")
    if retracted:
        out.append(Finding(id="kv_retractions", severity="warning",
                           title=f"{retracted:g} request(s) retracted: the KV cache is under pressure",
                           evidence=[f"sglang:num_retracted_reqs {retracted:g}"],
                           fix="lower --max-running-requests, or raise --mem-fraction-static if memory allows"))
    usage = m.get("token_usage")
    if usage is not None and usage >= 0.95:
        out.append(Finding(id="kv_cache_nearly_full", severity="warning",
                           title=f"KV cache {usage:.0%} full", evidence=[f"sglang:token_usage {usage:g}"],
                           fix="fewer parallel requests or shorter contexts; raise --mem-fraction-static"))
    accept = m.get("spec_accept_length")
    if server_args.get("speculative_algorithm") and accept is not None and 0 < accept < 1.5:
        out.append(Finding(id="spec_low_acceptance", severity="info",
                           title=f"speculative accept length {accept:.2f}: the draft model rarely helps",
                           evidence=[f"sglang:spec_accept_length {accept:g}"],
                           fix="check the draft model matches the target model; try fewer draft tokens"))
    return out


def _fmt(value: float | None, pattern: str) -> str | None:
    return None if value is None else pattern.format(value)


def summarize(status: str, url: str, reason: str, probe: HttpProbe | None, m: Mapping[str, float | None],
              server: Mapping[str, Any], container: ContainerInfo | None, findings: list[Finding]) -> str:
    lines = [f"SGLang ({url}): {status.upper().replace('_', ' ')}"]
    if status == "not_resident":
        lines.append(reason)
    if probe is not None:
        h = probe.health
        lines.append(f"/health: {h.status} in {h.seconds:.2f} s" if h.answered else f"/health: {h.error}")
    if server:
        bits = [f"{k} {server[k]}" for k in ("version", "model_path") if server.get(k)]
        if bits:
            lines.append("server: " + ", ".join(bits))
    readings = [
        _fmt(m.get("gen_throughput"), "throughput {:.1f} tok/s"),
        _fmt(m.get("num_running_reqs"), "running {:g}"), _fmt(m.get("num_queue_reqs"), "queue {:g}"),
        _fmt(m.get("token_usage"), "KV usage {:.0%}"),
        _fmt(m.get("spec_accept_length"), "spec accept length {:.2f}"),
        _fmt(m.get("spec_accept_rate"), "rate {:.2f}"),
        _fmt(m.get("ttft_p50_s"), "TTFT p50 {:.2f} s"), _fmt(m.get("num_retracted_reqs"), "retractions {:g}"),
    ]
    readings = [r for r in readings if r]
    if readings:
        lines.append("metrics: " + ", ".join(readings))
    if container is not None and container.found:
        lines.append(f"container {container.name}: {container.status}"
                     + (f" (exit code {container.exit_code})" if container.status != "running" else ""))
    for f in sorted(findings, key=lambda f: -SEVERITY_RANK[f.severity]):
        lines.append(f"- [{f.severity}] {f.title}" + (f" -> fix: {f.fix}" if f.fix else ""))
    if status == "down" and container is not None and container.log_lines:
        lines.append("last log lines:")
        lines.extend("  " + ln for ln in container.log_lines[-10:])
    return "\n".join(lines)


def assess(*, url: str, resident: bool, reason: str, probe: HttpProbe | None, container: ContainerInfo | None,
           sigs: list[signatures.Signature], rules: Mapping[str, FlagRule], log_tail: int = 50,
           process_log: list[str] | None = None) -> Assessment:
    """Status, findings, metrics and a readable summary from what was gathered (no I/O)."""
    # a process-driven resident has no container: its log file (the driver's) is scanned instead
    log_lines = container.log_lines if container is not None else list(process_log or [])
    findings = signatures.match(log_lines, sigs)
    findings += _container_findings(container, log_tail, resident)
    metrics: dict[str, float | None] = {}
    server: dict[str, Any] = {}
    loads = None
    if probe is not None:
        findings = _health_findings(probe) + findings
        if probe.metrics.ok and isinstance(probe.metrics.body, str):
            metrics = prom.sglang_readings(probe.metrics.body)
        elif probe.reachable:
            findings.append(Finding(id="metrics_unavailable", severity="info",
                                    title=f"/metrics unavailable ({probe.metrics.status or probe.metrics.error})",
                                    fix="launch with --enable-metrics"))
        if probe.server_info.ok and isinstance(probe.server_info.body, dict):
            server = dict(probe.server_info.body)
            env = container.env if container is not None else {}
            findings += flags.check(server, rules, env)
        if probe.model_info.ok and isinstance(probe.model_info.body, dict):
            server.setdefault("model_path", probe.model_info.body.get("model_path"))
        if probe.loads.ok:
            loads = probe.loads.body
        findings += _metric_findings(metrics, server)
    if metrics.get("gen_throughput") in (None, 0.0):
        from_log = prom.throughput_from_log(log_lines)
        if from_log is not None:
            metrics["gen_throughput_log"] = from_log
    if not resident:
        status = "not_resident"
    elif probe is None or not probe.reachable:
        status = "down"
    elif not probe.health.ok or worst(findings) >= SEVERITY_RANK["error"]:
        status = "degraded"
    else:
        status = "healthy"
    info = {k: server.get(k) for k in ("version", "model_path", "served_model_name", "attention_backend",
                                       "speculative_algorithm") if server.get(k) is not None}
    text = summarize(status, url, reason, probe, metrics, info, container, findings)
    return Assessment(status=status, findings=findings, metrics=metrics, server=info, loads=loads, summary=text)
