"""Prometheus `/metrics` of the hub: scraped over HTTP and parsed by the reference Python parser."""

from __future__ import annotations

import time

import httpx
import pytest

from bridges.status.metrics import HubMetrics
from hub.context import Context
from hub.sim.serve import serve_app
from tests import status_helpers
from tests.status_helpers import add_cost, status_hub

parser = pytest.importorskip("prometheus_client.parser", reason="prometheus-client is a dev extra")


def _families(text: str) -> dict:
    return {f.name: f for f in parser.text_string_to_metric_families(text)}


def _value(fams: dict, family: str, sample: str | None = None, **labels: str) -> float:
    for s in fams[family].samples:
        if (sample is None or s.name == sample) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError(f"no sample {family} {labels}: {fams[family].samples[:4]}")


async def _scrape(url: str) -> tuple[httpx.Response, dict]:
    async with httpx.AsyncClient() as client:
        resp = await client.get(url + "/metrics")
    return resp, _families(resp.text)


async def test_metrics_count_jobs_by_outcome_and_report_spend(tmp_path):
    async with status_hub(tmp_path) as (hub, url):
        ctx = Context.new("cli")
        for _ in range(2):
            await hub.run_skill("echo", {"text": "x"}, ctx)
        with pytest.raises(Exception, match="exploded"):
            await hub.run_skill("boom", {}, ctx)
        await add_cost(hub, 0.25)
        await add_cost(hub, 1.5, at=time.time() - 86400 * 40)  # an older month: not in today / this month
        resp, fams = await _scrape(url)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert fams["sovhub_jobs"].type == "counter"
    assert _value(fams, "sovhub_jobs", skill="echo", status="succeeded") == 2
    assert _value(fams, "sovhub_jobs", skill="boom", status="failed") == 1
    assert _value(fams, "sovhub_job_duration_seconds", "sovhub_job_duration_seconds_count", skill="echo") == 2
    assert _value(fams, "sovhub_spend_usd", period="today") == pytest.approx(0.25)
    assert _value(fams, "sovhub_spend_usd", period="month") == pytest.approx(0.25)
    assert _value(fams, "sovhub_spend_cap_usd", period="today") == hub.config.routing.budget.daily_usd
    assert _value(fams, "sovhub_up") == 1
    assert _value(fams, "sovhub_gpu_queue_depth") == 0
    assert _value(fams, "sovhub_jobs_running") == 0


class _CollectingSink:
    """The chat API's ReplySink, as a bridge implements it: here it just keeps the answer."""

    def __init__(self) -> None:
        self.text = ""

    async def start(self) -> None: ...

    async def delta(self, text: str) -> None:
        self.text += text

    async def notice(self, text: str) -> None: ...

    async def finish(self, text: str) -> None:
        self.text = text

    async def fail(self, message: str) -> None:
        raise AssertionError(message)


async def test_chat_turns_are_counted_by_route_with_tokens_and_cost(tmp_path):
    from hub.chat.api import ConversationKey, TurnRequest
    from hub.sim.anthropic import create_app as anthropic_app
    from hub.sim.sglang import create_app as sglang_app

    async with serve_app(sglang_app()) as local_url, serve_app(anthropic_app(api_key="sk-test")) as cloud_url:
        llm = {"local": {"base_url": local_url + "/v1"}, "cloud": {"base_url": cloud_url, "api_key": "sk-test"}}
        async with status_hub(tmp_path, chat=True, llm=llm) as (hub, url):
            for override in ("local", "local", "cloud"):
                sink = _CollectingSink()
                request = TurnRequest(text="hello metrics", context=Context.new("cli"),
                                      conversation=ConversationKey("cli", "metrics"), override=override)
                outcome = await hub.chat.turn(request, sink)
                assert outcome.route == override and "hello metrics" in sink.text
            _, fams = await _scrape(url)
    assert _value(fams, "sovhub_turns", route="local") == 2
    assert _value(fams, "sovhub_turns", route="cloud") == 1
    assert _value(fams, "sovhub_tokens", provider="anthropic", direction="output") > 0
    assert _value(fams, "sovhub_tokens", provider="local", direction="input") > 0
    assert _value(fams, "sovhub_cost_usd", provider="anthropic") > 0
    assert _value(fams, "sovhub_spend_usd", period="today") == pytest.approx(
        _value(fams, "sovhub_cost_usd", provider="anthropic"))


def test_swap_history_becomes_counters_and_a_histogram_counted_once():
    metrics = HubMetrics()
    swaps = [{"resident": "comfyui", "phase": "in", "at": 100.0, "seconds": 42.0, "ok": True},
             {"resident": "sglang", "phase": "out", "at": 90.0, "seconds": 8.0, "ok": True},
             {"resident": 'we"ird\\name', "phase": "in", "at": 150.0, "seconds": 3.0, "ok": False}]
    metrics.fold_swaps(swaps[:2])
    metrics.fold_swaps(swaps)  # the snapshot's sliding window repeats older records
    fams = _families(metrics.render({"gpu": {"resident": "comfyui", "state": "ready", "queue": [
        {"job_id": "j1", "resident": "sglang", "job_class": "interactive"},
        {"job_id": "j2", "resident": "sglang", "job_class": "skill"}]},
        "residents": {"sglang": {}, "comfyui": {}}}))
    assert _value(fams, "sovhub_gpu_swaps", resident="comfyui", phase="in", ok="true") == 1
    assert _value(fams, "sovhub_gpu_swaps", resident='we"ird\\name', phase="in", ok="false") == 1
    assert _value(fams, "sovhub_gpu_swap_seconds", "sovhub_gpu_swap_seconds_bucket",
                  resident="comfyui", phase="in", le="60.0") == 1
    assert _value(fams, "sovhub_gpu_swap_seconds", "sovhub_gpu_swap_seconds_bucket",
                  resident="comfyui", phase="in", le="30.0") == 0
    assert _value(fams, "sovhub_gpu_swap_seconds", "sovhub_gpu_swap_seconds_sum", resident="comfyui") == 42
    assert _value(fams, "sovhub_gpu_queue_depth") == 2
    assert _value(fams, "sovhub_gpu_queue_jobs", resident="sglang", job_class="interactive") == 1
    assert _value(fams, "sovhub_gpu_resident", resident="comfyui") == 1
    assert _value(fams, "sovhub_gpu_resident", resident="sglang") == 0


@pytest.mark.slow  # starts processes: outside the fast tier
async def test_a_real_swap_shows_in_metrics_and_on_the_page(tmp_path):
    async with status_hub(tmp_path, residents=status_helpers.sim_residents(), scheduler=True) as (hub, url):
        ctx = Context.new("cli")
        async with hub.gpu.lease("comfyui", job_id="img-1", context=ctx, job_class="skill", label="hero image"):
            _, during = await _scrape(url)
        async with httpx.AsyncClient() as client:
            page = (await client.get(url + "/")).text
        _, fams = await _scrape(url)
    assert _value(during, "sovhub_gpu_resident", resident="comfyui") == 1
    assert _value(during, "sovhub_gpu_resident", resident="sglang") == 0
    assert _value(fams, "sovhub_gpu_swaps", resident="comfyui", phase="in", ok="true") == 1
    assert _value(fams, "sovhub_gpu_swaps", resident="sglang", phase="out", ok="true") == 1
    assert _value(fams, "sovhub_gpu_swap_seconds", "sovhub_gpu_swap_seconds_count", resident="comfyui",
                  phase="in") == 1
    assert "comfyui" in page.split('id="swaps"')[1].split("</section>")[0]
