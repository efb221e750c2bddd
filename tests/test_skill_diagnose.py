"""diagnose_sglang against the real SGLang stand-in (in-process and in a real container)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from hub.config.model import HubConfig
from hub.context import Context
from hub.core import Hub
from hub.errors import ConfigError
from hub.gpu.api import GpuSnapshot, QueuedJob
from hub.registry import Permission, SkillRegistry
from hub.sim import sglang
from hub.sim.serve import free_port, serve_app
from skills.ops import assess, flags, prom, signatures
from skills.ops.config import OpsSkillsConfig
from skills.ops.diagnose import sglang_url
from tests.waiting import wait_until_sync

# A log as SGLang writes it on a bad day: every known signature, among ordinary lines.
LOG_SAMPLE = """\
[2026-11-25 10:00:01] server_args=ServerArgs(model_path='mistralai/Mistral-Small-4-119B-2603-NVFP4', ...)
[2026-11-25 10:00:09] Load weight begin. avail mem=119.50 GB
[2026-11-25 10:00:12] RuntimeError: CUDA error: no kernel image is available for execution on the device
[2026-11-25 10:05:00] RuntimeError: FlashInfer: Unsupported architecture sm_121 (compute capability 12.1)
[2026-11-25 10:06:00] flashinfer.jit: BatchPrefillWithPagedKVCache failed: CUDA out of memory (OOM) in workspace
[2026-11-25 10:10:00] Prefill batch. #new-seq: 1, #new-token: 8192, #cached-token: 0, token usage: 0.41
[2026-11-25 10:10:01] Traceback (most recent call last):
  File "/sgl-workspace/sglang/python/sglang/srt/model_executor/model_runner.py", line 1702, in forward_extend
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 119.70 GiB
Decode batch. #running-req: 8, token usage: 0.98, cuda graph: True, gen throughput (token/s): 31.40, #queue-req: 3
[2026-11-25 10:20:01] KV cache pool is full. Retract requests. #retracted_reqs: 2, #new_token_ratio: 0.4000 -> 0.6500
[2026-11-25 10:20:02] Traceback (most recent call last):
  File "/sgl-workspace/sglang/python/sglang/srt/model_executor/model_runner.py", line 1650, in forward_decode
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 512.00 MiB. GPU 0 has 1.2 GiB free
Health check failed. Server couldn't get a response from detokenizer for last 20 seconds.
[2026-11-25 11:00:00] AssertionError: SGLANG_ENABLE_SPEC_V2 only supports speculative_eagle_topk == 1, got 4
[2026-11-25 11:30:00] RuntimeError: Not enough memory. Please try to increase --mem-fraction-static.
ERROR:    [Errno 98] error while attempting to bind on address ('0.0.0.0', 30000): address already in use
""" + "\n" * 40 + """\
[2026-11-25 12:00:00] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.50 GiB.
"""


def make_config(tmp_path: Path, **ops) -> HubConfig:
    return HubConfig.model_validate({"storage": {"data_dir": str(tmp_path / "data")}, "skills": {"ops": ops}})


def ops_registry() -> SkillRegistry:
    registry = SkillRegistry()
    registry.discover("skills.ops")
    return registry


async def start_hub(tmp_path: Path, **ops) -> Hub:
    return await Hub.start(make_config(tmp_path, **ops), skills=ops_registry(), components=(), resume_jobs=False)


async def diagnose(hub: Hub, **params):
    return await hub.run_skill("diagnose_sglang", params, Context.new("cli"), grant=Permission.read)


# ---------------------------------------------------------------- signatures, metrics, flags (pure)
def test_every_signature_in_the_data_file_is_matched_from_a_log_sample_with_its_fix():
    sigs = signatures.load()
    found = {f.id: f for f in signatures.match(LOG_SAMPLE.splitlines(), sigs)}
    assert set(found) == {s.id for s in sigs}
    for sig in sigs:
        assert found[sig.id].fix == sig.fix and found[sig.id].evidence, sig.id
        assert [f.id for f in signatures.match([sig.example], sigs)] == [sig.id], sig.id
    assert "--attention-backend triton" in found["flashinfer_unsupported_arch"].fix
    assert "--chunked-prefill-size" in found["cuda_oom_prefill"].fix
    assert "--max-running-requests" in found["cuda_oom_decode"].fix
    assert "--speculative-eagle-topk 1" in found["spec_v2_needs_topk1"].fix
    assert "cu13" in found["sm121_no_kernel_image"].fix


def test_a_phase_specific_oom_is_not_also_reported_as_a_generic_one():
    lines = LOG_SAMPLE.splitlines()[6:10]
    assert [f.id for f in signatures.match(lines, signatures.load())] == ["cuda_oom_prefill"]


def test_a_bad_signature_file_is_refused_with_the_entry_named(tmp_path):
    bad = tmp_path / "sigs.yaml"
    bad.write_text("- id: x\n  regex: '(unclosed'\n  severity: error\n  explanation: e\n  fix: f\n")
    with pytest.raises(ConfigError, match=r"\(x\): bad regex"):
        signatures.load(bad)
    bad.write_text("- id: y\n  regex: 'a'\n  severity: fatal\n  explanation: e\n  fix: f\n")
    with pytest.raises(ConfigError, match="severity must be one of"):
        signatures.load(bad)


def test_prometheus_text_gives_throughput_queue_spec_retractions_and_ttft():
    sim = sglang.SGLangSim(spec_accept_length=3.2)
    sim.gen_throughput, sim.running, sim.used_tokens = 37.5, 2, 65536
    sim.ttft = [0.2, 0.4, 0.4, 3.0]
    sim.faults.retractions = 4
    m = prom.sglang_readings(sglang.render_metrics(sim))
    assert m["gen_throughput"] == 37.5 and m["num_running_reqs"] == 2 and m["num_queue_reqs"] == 0
    assert m["token_usage"] == pytest.approx(0.25) and m["num_retracted_reqs"] == 4
    assert m["spec_accept_length"] == 3.2 and m["spec_accept_rate"] == pytest.approx(0.8)
    assert m["ttft_count"] == 4 and m["ttft_mean_s"] == pytest.approx(1.0)
    assert 0.25 <= m["ttft_p50_s"] <= 0.5 and 2.5 <= m["ttft_p90_s"] <= 5.0


def test_launch_flags_are_checked_against_the_gb10_known_good_set():
    rules = OpsSkillsConfig().gb10_flags
    good = sglang.SGLangSim().server_args()
    assert flags.check(good, rules, {"SGLANG_ENABLE_SPEC_V2": "1"}) == []
    bad = {**good, "attention_backend": "flashinfer", "mem_fraction_static": 0.92, "speculative_eagle_topk": 4}
    assert {f.id for f in flags.check(bad, rules)} == {"flag_attention_backend", "flag_mem_fraction_static"}
    with_v2 = {f.id: f for f in flags.check(bad, rules, {"SGLANG_ENABLE_SPEC_V2": "1"})}
    assert with_v2["flag_speculative_eagle_topk"].fix == "launch with --speculative-eagle-topk 1"
    assert with_v2["flag_attention_backend"].fix == "launch with --attention-backend triton"


def test_not_resident_says_who_holds_the_gpu_and_who_waits():
    snap = GpuSnapshot(resident="comfyui", state="busy", busy_with=["hero_image"],
                       queue=[QueuedJob("j1", "sglang", "interactive", waited_s=12, eta_s=40, label="chat")],
                       swaps=[{"resident": "sglang", "phase": "start", "at": 1.0, "seconds": 300, "ok": False,
                               "error": "not ready after 300 s"}],
                       residents={"sglang": {"phase": "stopped", "error": "not ready after 300 s", "eta_s": 95}})
    ok, why = assess.residency("sglang", managed=True, configured=True, snap=snap)
    assert not ok
    assert "comfyui holds the GPU" in why and "hero_image" in why and "1 job(s) waiting for sglang" in why
    assert "sglang: phase stopped, error not ready after 300 s, eta_s 95" in why
    assert "last swap: sglang start (300 s, failed: not ready after 300 s)" in why
    assert assess.residency("sglang", managed=True, configured=True, snap=GpuSnapshot("sglang", "ready"))[0]
    assert assess.residency("sglang", managed=False, configured=True, snap=GpuSnapshot())[0]


def test_not_resident_status_comes_with_the_reason_and_no_probe():
    out = assess.assess(url="http://127.0.0.1:1", resident=False, reason="sglang is not resident: comfyui holds",
                        probe=None, container=None, sigs=signatures.load(), rules={})
    assert out.status == "not_resident" and "comfyui holds" in out.summary


def test_url_defaults_to_the_llm_root_without_v1(tmp_path):
    cfg = make_config(tmp_path)
    assert sglang_url(cfg) == "http://127.0.0.1:30000"
    cfg = HubConfig.model_validate({"llm": {"local": {"base_url": "http://10.0.0.2:31000/v1/"}}})
    assert sglang_url(cfg) == "http://10.0.0.2:31000"


# ---------------------------------------------------------------- against the stand-in
@pytest.fixture
async def sg():
    async with serve_app(sglang.create_app(tokens_per_s=400)) as url:
        yield url


async def _sim(url: str, path: str, body: dict) -> None:
    async with httpx.AsyncClient() as h:
        (await h.post(url + path, json=body, timeout=10)).raise_for_status()


async def test_healthy_standin_gives_healthy_with_throughput_read_from_metrics(sg, tmp_path):
    async with httpx.AsyncClient() as h:
        r = await h.post(sg + "/v1/chat/completions", timeout=30, json={
            "model": "mistral-small-4", "messages": [{"role": "user", "content": "tell me a long story " * 5}]})
        r.raise_for_status()
        expected = prom.sglang_readings((await h.get(sg + "/metrics")).text)["gen_throughput"]
    hub = await start_hub(tmp_path, sglang_url=sg)
    try:
        out = await diagnose(hub)
    finally:
        await hub.stop()
    assert out.status == "healthy", out.summary
    assert expected and out.metrics["gen_throughput"] == expected
    assert f"throughput {expected:.1f} tok/s" in out.summary
    assert out.metrics["spec_accept_length"] == pytest.approx(2.6)
    assert out.health["status"] == 200 and out.server["version"] == sglang.VERSION
    assert out.loads["loads"][0]["dp_rank"] == 0
    assert [f for f in out.findings if f.severity != "info"] == []
    assert out.container is None and out.explanation is None


async def test_health_503_degrades_with_its_fix_and_retractions_warn(sg, tmp_path):
    await _sim(sg, "/_sim/faults", {"health_status": 503, "retractions": 3})
    hub = await start_hub(tmp_path, sglang_url=sg)
    try:
        out = await diagnose(hub)
    finally:
        await hub.stop()
    ids = {f.id: f for f in out.findings}
    assert out.status == "degraded"
    assert ids["health_503"].severity == "critical" and ids["kv_retractions"].severity == "warning"
    assert "--max-running-requests" in ids["kv_retractions"].fix
    assert "[critical] /health answers 503" in out.summary


async def test_slow_health_is_a_timeout_finding_not_a_hang(sg, tmp_path):
    await _sim(sg, "/_sim/faults", {"health_delay": 5})
    hub = await start_hub(tmp_path, sglang_url=sg, health_timeout_s=0.3)
    try:
        out = await diagnose(hub)
    finally:
        await hub.stop()
    assert out.status == "degraded"
    assert [f.id for f in out.findings if f.severity == "error"] == ["health_timeout"]
    assert out.metrics["gen_throughput"] is not None  # the other endpoints still answered


def older_sglang(app, missing=("/server_info", "/model_info", "/v1/loads")):
    """The stand-in as an older SGLang that only has the `/get_*` names (404 for the newer ones)."""
    async def asgi(scope, receive, send):
        if scope["type"] == "http" and scope["path"] in missing:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b'{"detail":"Not Found"}'})
            return
        await app(scope, receive, send)
    return asgi


async def test_an_older_server_is_read_through_the_get_endpoint_aliases(tmp_path):
    async with serve_app(older_sglang(sglang.create_app())) as url:
        hub = await start_hub(tmp_path, sglang_url=url)
        try:
            out = await diagnose(hub)
        finally:
            await hub.stop()
    assert out.status == "healthy", out.summary
    assert out.server["version"] == sglang.VERSION and out.server["attention_backend"] == "triton"
    assert out.loads == [{"num_reqs": 0, "num_waiting_reqs": 0, "num_tokens": 0}]


async def test_nothing_listening_is_down_and_says_so(tmp_path):
    hub = await start_hub(tmp_path, sglang_url=f"http://127.0.0.1:{free_port()}")
    try:
        out = await diagnose(hub)
    finally:
        await hub.stop()
    assert out.status == "down" and out.findings[0].id == "unreachable"
    assert "nothing answers" in out.summary


# ---------------------------------------------------------------- in a real container
RETRACT = "KV cache pool is full. Retract requests. #retracted_reqs: 1, #new_token_ratio: 0.4000 -> 0.6500"

def _wait_health(url: str, timeout: float = 30) -> None:
    wait_until_sync(lambda: httpx.get(url + "/health", timeout=1).status_code == 200, timeout=timeout,
                    what=f"the stand-in at {url} to come up", ignoring=(httpx.HTTPError,))


async def test_standin_in_a_container_is_healthy_then_down_with_its_last_log_lines(docker_cleanup, tmp_path):
    port = free_port()
    name = f"sglang-diag-{port}"
    # The server logs a retraction (a known signature) on stdout, then serves.
    code = (f"print({RETRACT!r}, flush=True); from hub.sim.__main__ import main; "
            f"main(['sglang', '--port', '{port}'])")
    container = docker_cleanup.run_python(name, ["-c", code], env={"SGLANG_ENABLE_SPEC_V2": "1"})
    url = f"http://127.0.0.1:{port}"
    _wait_health(url)
    hub = await start_hub(tmp_path, sglang_url=url, sglang_container=name, docker_url=docker_cleanup.base_url,
                          log_lines=20)
    try:
        up = await diagnose(hub)
        container.stop(timeout=10)
        down = await diagnose(hub)
    finally:
        await hub.stop()
    assert up.status == "healthy", up.summary  # a warning alone does not degrade
    assert up.container["status"] == "running" and any("listening on" in ln for ln in up.log_tail)
    retract = next(f for f in up.findings if f.id == "kv_cache_full_retract")
    assert retract.severity == "warning" and retract.evidence == [RETRACT]
    assert "--max-running-requests" in retract.fix and "[warning]" in up.summary
    assert not [f for f in up.findings if f.id.startswith("flag_")]  # the spec v2 env and topk 1 agree

    assert down.status == "down"
    assert down.container["status"] == "exited"
    assert any("stand-in stopped" in ln for ln in down.log_tail)
    stopped = next(f for f in down.findings if f.id == "container_not_running")
    assert stopped.severity == "critical" and any("stand-in stopped" in ln for ln in stopped.evidence)
    assert "last log lines:" in down.summary and "stand-in stopped" in down.summary


# ---------------------------------------------------------------- with the resident scheduler
async def test_with_the_scheduler_it_is_not_resident_until_leased_then_healthy(tmp_path):
    port = free_port()
    config = HubConfig.model_validate({
        "storage": {"data_dir": str(tmp_path / "data")},
        "llm": {"local": {"base_url": f"http://127.0.0.1:{port}/v1"}},
        "residents": {"memory_guard": {"enabled": False}, "sglang": {
            "kind": "llm", "memory_gb": 60, "base_url": f"http://127.0.0.1:{port}/v1",
            "driver": {"type": "process", "command": [sys.executable, "-m", "hub.sim", "sglang", "--port", str(port)]},
            "ready": {"url": f"http://127.0.0.1:{port}/health"}, "warmup": False, "start_timeout_s": 60}}})
    hub = await Hub.start(config, skills=ops_registry(), components=("hub.gpu.component",),
                          resume_jobs=False)
    pidfile = tmp_path / "data" / "residents" / "sglang.pid"
    try:
        before = await diagnose(hub)
        async with hub.gpu.lease("sglang", job_id="diag-test", context=Context.new("cli")):
            during = await diagnose(hub)
    finally:
        await hub.stop()
        if pidfile.exists():  # the scheduler leaves residents running for the next hub start
            try:
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
    assert before.status == "not_resident" and before.health == {}
    assert "sglang is not resident: no model server holds the GPU" in before.summary
    assert during.status == "healthy", during.summary
    assert during.residency.startswith("sglang is resident")


async def test_with_warnings_the_local_model_explains_and_never_the_cloud(sg, tmp_path):
    reply = "The KV cache is full under load; lower --max-running-requests first."
    await _sim(sg, "/_sim/faults", {"retractions": 2})
    await _sim(sg, "/_sim/script", {"responses": [{"text": reply}]})
    config = HubConfig.model_validate({
        "storage": {"data_dir": str(tmp_path / "data")}, "skills": {"ops": {"sglang_url": sg}},
        "llm": {"local": {"base_url": sg + "/v1"}, "cloud": {"enabled": False}}})
    hub = await Hub.start(config, skills=ops_registry(), components=("hub.chat.component",), resume_jobs=False)
    try:
        out = await diagnose(hub)
        quiet = await diagnose(hub, explain=False)
    finally:
        await hub.stop()
    assert out.status == "healthy" and out.explanation == reply
    assert out.summary.endswith(reply)
    assert quiet.explanation is None


async def test_a_process_driven_residents_log_file_is_scanned_for_failure_signatures(tmp_path):
    """No container to read: the scheduler's process driver log (driver.log_dir) is what is scanned."""
    import shlex

    sig = next(s for s in signatures.load() if s.id == "flashinfer_unsupported_arch")
    port = free_port()
    serve = shlex.join([sys.executable, "-m", "hub.sim", "sglang", "--port", str(port)])
    config = HubConfig.model_validate({
        "storage": {"data_dir": str(tmp_path / "data")},
        "llm": {"local": {"base_url": f"http://127.0.0.1:{port}/v1"}},
        "residents": {"memory_guard": {"enabled": False}, "sglang": {
            "kind": "llm", "memory_gb": 60, "base_url": f"http://127.0.0.1:{port}/v1", "default": True,
            "driver": {"type": "process", "command": ["sh", "-c", f"echo {shlex.quote(sig.example)}; exec {serve}"]},
            "ready": {"url": f"http://127.0.0.1:{port}/health"}, "warmup": False, "start_timeout_s": 60}}})
    hub = await Hub.start(config, skills=ops_registry(), components=("hub.gpu.component",),
                          resume_jobs=False)
    drivers = hub.gpu.drivers
    try:
        async with hub.gpu.lease("sglang", job_id="diag-log", context=Context.new("cli")):
            result = await diagnose(hub)
    finally:
        await hub.stop()
        for d in drivers.values():
            await d.stop(5)
    assert "flashinfer_unsupported_arch" in {f.id for f in result.findings}, result.summary
