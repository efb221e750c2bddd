"""A small Prometheus text-format parser and the SGLang readings a diagnosis wants from it."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?\s*$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    """Samples of a Prometheus exposition (comments skipped; unparsable lines ignored)."""
    out: list[Sample] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        labels = {k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in _LABEL.findall(m.group(3) or "")}
        out.append(Sample(m.group(1), labels, value))
    return out


def _sum(samples: list[Sample], name: str) -> float | None:
    values = [s.value for s in samples if s.name == name]
    return sum(values) if values else None


def _max(samples: list[Sample], name: str) -> float | None:
    values = [s.value for s in samples if s.name == name]
    return max(values) if values else None


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus-style quantile from cumulative (upper bound, count) buckets; linear in a bucket."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


def sglang_readings(text: str) -> dict[str, float | None]:
    """Token usage, queue, running, throughput, speculative acceptance, retractions and TTFT."""
    s = parse(text)
    gauges = {
        "num_running_reqs": _sum(s, "sglang:num_running_reqs"),
        "num_queue_reqs": _sum(s, "sglang:num_queue_reqs"),
        "token_usage": _max(s, "sglang:token_usage"),
        "num_used_tokens": _sum(s, "sglang:num_used_tokens"),
        "max_total_num_tokens": _sum(s, "sglang:max_total_num_tokens"),
        "gen_throughput": _sum(s, "sglang:gen_throughput"),
        "cache_hit_rate": _max(s, "sglang:cache_hit_rate"),
        "spec_accept_length": _max(s, "sglang:spec_accept_length"),
        "spec_accept_rate": _max(s, "sglang:spec_accept_rate"),
        "num_retracted_reqs": _sum(s, "sglang:num_retracted_reqs"),
        "prompt_tokens_total": _sum(s, "sglang:prompt_tokens_total"),
        "generation_tokens_total": _sum(s, "sglang:generation_tokens_total"),
    }
    name = "sglang:time_to_first_token_seconds"
    count = _sum(s, f"{name}_count")
    total = _sum(s, f"{name}_sum")
    merged: dict[float, float] = {}
    for sample in s:
        if sample.name == f"{name}_bucket" and "le" in sample.labels:
            bound = float(sample.labels["le"].replace("+Inf", "inf"))
            merged[bound] = merged.get(bound, 0.0) + sample.value
    buckets = list(merged.items())
    gauges["ttft_count"] = count
    gauges["ttft_mean_s"] = (total / count) if count else None
    gauges["ttft_p50_s"] = histogram_quantile(0.5, buckets)
    gauges["ttft_p90_s"] = histogram_quantile(0.9, buckets)
    return gauges


_DECODE = re.compile(r"Decode batch\..*?gen throughput \(token/s\): ([0-9.]+)")


def throughput_from_log(lines: list[str]) -> float | None:
    """The last `Decode batch. ... gen throughput (token/s): X` reading in the server log."""
    for line in reversed(lines):
        m = _DECODE.search(line)
        if m:
            return float(m.group(1))
    return None
