"""`sovhub doctor`: every check shown ✅ and ❌ against real parts (a private dockerd, real files and
sockets, a fake /proc/meminfo and a fake nvidia-smi on PATH), and the whole command run here."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.config import load_config
from hub.doctor import checks, facts, nvfp4
from hub.doctor.composefile import ComposeFile
from hub.doctor.facts import DockerFacts
from tests.testbed.dockerd import TEST_LABEL, DockerEngine
from tests.testbed.socketproxy import SocketProxy, compose_rules

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "compose" / "compose.yaml"
GB10 = ROOT / "config" / "hub.gb10.yaml"
GIB_KB = 1024 * 1024


def _config(tmp_path: Path, text: str | None = None):
    text = (text if text is not None else GB10.read_text())
    for name in ("matrix_password", "anthropic_api_key", "mcp_owner_token", "status_token"):
        (tmp_path / name).write_text("x" * 32)
        text = text.replace(f"/run/secrets/{name}", str(tmp_path / name))
    (tmp_path / "hub.yaml").write_text(text)
    return load_config(tmp_path / "hub.yaml", environ={})


def _fake_nvidia_smi(tmp_path: Path, driver: str, cuda: str, name: str = "NVIDIA GB10") -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "nvidia-smi"
    script.write_text(f"""#!/bin/sh
if [ "$1" = "--query-gpu=name,driver_version" ]; then echo "{name}, {driver}"; exit 0; fi
echo "| NVIDIA-SMI {driver}    Driver Version: {driver}    CUDA Version: {cuda}     |"
""")
    script.chmod(0o755)
    return str(bin_dir)


def _meminfo(tmp_path: Path, total_gib: float, avail_gib: float) -> str:
    path = tmp_path / "meminfo"
    path.write_text(f"MemTotal:       {int(total_gib * GIB_KB)} kB\nMemFree:        1000 kB\n"
                    f"MemAvailable:   {int(avail_gib * GIB_KB)} kB\n")
    return str(path)


# --- gpu, memory, exclusivity, flags, config: files and fakes on PATH ---------------------------

def test_gpu_check_passes_a_gb10_with_cuda_13_and_fails_old_drivers_and_no_gpu(tmp_path):
    ok = checks.gpu(facts.nvidia_smi(_fake_nvidia_smi(tmp_path / "a", "580.95.05", "13.0")))
    assert ok.status == "ok" and "GB10" in ok.title and "13.0" in ok.title
    old = checks.gpu(facts.nvidia_smi(_fake_nvidia_smi(tmp_path / "b", "570.86.10", "12.8")))
    assert old.status == "fail" and any("CUDA 12.8" in d for d in old.details)
    (tmp_path / "empty").mkdir()
    none = checks.gpu(facts.nvidia_smi(str(tmp_path / "empty")))
    assert none.status == "fail" and none.title.startswith("no GPU")


def test_memory_check_wants_the_pool_within_what_the_box_has(tmp_path):
    config = _config(tmp_path)
    good = checks.memory(config, *facts.meminfo(_meminfo(tmp_path, 119.7, 112.0)))
    assert good.status == "ok", good
    config128 = _config(tmp_path, GB10.read_text().replace("memory_gb: 119.7", "memory_gb: 128"))
    bad = checks.memory(config128, *facts.meminfo(_meminfo(tmp_path, 119.7, 112.0)))
    assert bad.status == "fail" and "119.7" in bad.fix
    busy = checks.memory(config, *facts.meminfo(_meminfo(tmp_path, 119.7, 30.0)))
    assert busy.status == "warn" and "sglang" in busy.details[0]
    missing = checks.memory(config, *facts.meminfo(str(tmp_path / "nope")))
    assert missing.status == "fail"


def test_exclusive_check_fails_when_two_model_servers_could_share_the_pool(tmp_path):
    config = _config(tmp_path)
    assert checks.exclusive(config, set(config.residents.servers)).status == "ok"
    loose = _config(tmp_path, GB10.read_text().replace("exclusive: true", "exclusive: false"))
    bad = checks.exclusive(loose, set(loose.residents.servers))
    assert bad.status == "fail" and any("comfyui + vllm-omni" in d for d in bad.details)


@pytest.fixture(scope="module")
def gb10_config(tmp_path_factory):
    return _config(tmp_path_factory.mktemp("gb10"))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(1, 120), st.booleans()), min_size=2, max_size=5), st.floats(60, 130))
def test_no_pair_the_doctor_passes_can_be_co_resident(gb10_config, servers, pool):
    """Property: whenever `exclusive` passes, every pair is too big for the budget or has an exclusive member."""
    base = gb10_config
    budget = pool - 8
    residents = base.residents.model_copy(deep=True)
    template = next(iter(residents.servers.values()))
    extra = {f"m{i}": template.model_copy(update={"memory_gb": min(mem, budget), "exclusive": excl,
                                                   "default": False, "pinned": False})
             for i, (mem, excl) in enumerate(servers)}
    residents.__pydantic_extra__ = extra
    residents.pool = residents.pool.model_copy(update={"memory_gb": pool, "reserve_gb": 8})
    config = base.model_copy(update={"residents": residents})
    result = checks.exclusive(config, set(extra))
    for a, ra in extra.items():
        for b, rb in extra.items():
            if a < b and result.status == "ok":
                assert ra.exclusive or rb.exclusive or ra.memory_gb + rb.memory_gb > budget


def test_sglang_flags_check_holds_for_the_shipped_stack_and_catches_drift(tmp_path):
    config = _config(tmp_path)
    assert checks.sglang_flags(config, ComposeFile.load(COMPOSE, {}), "sglang").status == "ok"
    drifted = tmp_path / "compose.yaml"
    drifted.write_text(COMPOSE.read_text().replace("      - --sampling-backend", "      - --no-op")
                       .replace("      - triton", "      - flashinfer"))
    bad = checks.sglang_flags(config, ComposeFile.load(drifted, {}), "sglang")
    assert bad.status == "fail" and any("--attention-backend" in d for d in bad.details)
    assert any("--sampling-backend" in d for d in bad.details)
    short = _config(tmp_path, GB10.read_text().replace("health_timeout_s: 75", "health_timeout_s: 25"))
    late = checks.sglang_flags(short, ComposeFile.load(COMPOSE, {}), "sglang")
    assert late.status == "fail" and "SGLANG_HEALTH_CHECK_TIMEOUT" in late.details[0]


def test_config_check_reports_the_checkers_errors():
    assert checks.config_check("", GB10).status == "ok"
    bad = checks.config_check("residents.pool.memory_gb: must be > 0 (line 9)", "x.yaml")
    assert bad.status == "fail" and bad.fix == "sovhub config check x.yaml"


# --- nvfp4 ---------------------------------------------------------------------------------------

MODELOPT = {"quantization": {"quant_algo": "NVFP4", "kv_cache_quant_algo": None, "group_size": 16,
                             "exclude_modules": ["lm_head"]}}


def test_nvfp4_check_and_completion_from_hf_quant_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["Mistral3ForConditionalGeneration"]}))
    ok, why = nvfp4.check(tmp_path)
    assert not ok and "no quantization_config" in why
    assert not nvfp4.complete(tmp_path)[0], "nothing to complete it from"
    (tmp_path / "hf_quant_config.json").write_text(json.dumps(MODELOPT))
    assert nvfp4.complete(tmp_path) == (True, "quant_method modelopt, quant_algo NVFP4")
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] and config["quantization_config"]["group_size"] == 16
    script = subprocess.run([sys.executable, str(ROOT / "hub" / "doctor" / "nvfp4.py"), "check", str(tmp_path)],
                            capture_output=True, text=True)
    assert script.returncode == 0 and "NVFP4" in script.stdout


@settings(max_examples=300)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=12), c, max_size=4),
                    max_leaves=12))
def test_nvfp4_describe_never_crashes_and_never_passes_without_a_quantization_config(value):
    for config in ({"quantization_config": value}, {"other": value}):
        ok, why = nvfp4.describe(config)
        assert isinstance(why, str) and why
        if not isinstance(value, dict) or "quantization_config" not in config:
            assert not ok


# --- secrets, blog, ports: real files and sockets ---------------------------------------------------

def test_secrets_check_wants_every_file_present_and_owner_only(tmp_path):
    files = {}
    for name in ("matrix_password", "status_token"):
        files[name] = tmp_path / name
        files[name].write_text("secret")
        files[name].chmod(0o600)
    assert checks.secrets(files, {"matrix_password"}).status == "ok"
    files["status_token"].chmod(0o644)
    bad = checks.secrets(files, {"matrix_password"})
    assert bad.status == "fail" and "644" in bad.details[0]
    files["status_token"].chmod(0o600)
    files["matrix_password"].write_text("")
    assert checks.secrets(files, {"matrix_password"}).status == "fail"
    assert checks.secrets(files, set()).status == "ok"  # empty = feature off
    files["gone"] = tmp_path / "gone"
    assert "missing" in checks.secrets(files, set()).details[0]
    assert stat.S_IMODE(files["status_token"].stat().st_mode) == 0o600


def test_blog_check_wants_a_git_checkout_with_a_remote_when_pushing(tmp_path):
    site = tmp_path / "blog"
    assert checks.blog(site, True, None, False).status == "fail"
    site.mkdir()
    subprocess.run(["git", "init", "-q", str(site)], check=True)
    assert checks.blog(site, True, [], False).status == "fail"
    subprocess.run(["git", "-C", str(site), "remote", "add", "origin", "git@example.org:me/blog.git"], check=True)
    (site / "package.json").write_text("{}")
    (site / "node_modules").mkdir()
    from hub.doctor.run import _git_remotes

    remotes = _git_remotes(site)
    assert remotes == ["git@example.org:me/blog.git"]
    assert checks.blog(site, True, remotes, True).status == "ok"
    assert checks.blog(site, True, remotes, False).status == "warn"
    key = tmp_path / "blog_deploy_key"
    key.write_text("")
    keyless = checks.blog(site, True, remotes, True, key)
    assert keyless.status == "warn" and "ssh-keygen" in keyless.fix
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert checks.blog(site, True, remotes, True, key).status == "ok"
    assert checks.blog(site, True, ["https://example.org/blog.git"], True, tmp_path / "none").status == "ok"


def test_ports_check_tells_a_stranger_from_a_sovhub_container(tmp_path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        in_use = {p: facts.port_in_use(p) for p in (port, free)}
        assert in_use == {port: True, free: False}
        who = facts.listener(port)
        assert f"pid {os.getpid()}" in who
        wanted = {port: "sovhub-hub", free: "sovhub-sglang"}
        bad = checks.ports(wanted, in_use, {"sovhub-hub": None}, {port: who})
        assert bad.status == "fail" and who in bad.details[0]
        assert checks.ports(wanted, in_use, {"sovhub-hub": "running"}, {}).status == "ok"



def test_ports_check_wants_the_gateways_port_from_the_config(tmp_path):
    from hub.doctor.run import _ports

    compose = ComposeFile.load(COMPOSE, {})
    default = _ports(load_config(None, environ={}, overrides={"storage": {"data_dir": str(tmp_path)}}), compose)
    assert default[8004] == default[8002]  # the gateway is the hub's, like MCP
    moved = _ports(load_config(None, environ={}, overrides={"storage": {"data_dir": str(tmp_path)},
                                                            "api": {"port": 18004}}), compose)
    assert 18004 in moved and 8004 not in moved
    off = _ports(load_config(None, environ={}, overrides={"storage": {"data_dir": str(tmp_path)},
                                                          "api": {"enabled": False}}), compose)
    assert 8004 not in off

# --- Docker: the private engine ------------------------------------------------------------------

@pytest.fixture(scope="module")
def nvidia_dockerd():
    """A second private engine that lists an `nvidia` runtime (runc under that name: no GPU here)."""
    runc = subprocess.run(["sh", "-c", "command -v runc"], capture_output=True, text=True).stdout.strip()
    engine = DockerEngine(extra_args=[f"--add-runtime=nvidia={runc or '/usr/sbin/runc'}"])
    try:
        engine.start()
        yield engine
    finally:
        engine.stop()


@pytest.mark.docker
def test_gpu_runtime_check_needs_the_nvidia_runtime(dockerd, nvidia_dockerd, tmp_path):
    assert checks.gpu_runtime(facts.docker_facts(dockerd.base_url, [], [], [])).status == "fail"
    assert checks.gpu_runtime(facts.docker_facts(nvidia_dockerd.base_url, [], [], [])).status == "ok"
    down = checks.gpu_runtime(facts.docker_facts(f"unix://{tmp_path}/none.sock", [], [], []))
    assert down.status == "fail" and "unreachable" in down.title
    assert checks.images(ComposeFile.load(COMPOSE, {}), facts.docker_facts(f"unix://{tmp_path}/n.sock", [], [], []),
                         ["sglang"]).status == "fail"


def _mini_compose(tmp_path: Path, base_image: str) -> Path:
    path = tmp_path / "compose.yaml"
    path.write_text(f"""
name: doctortest
services:
  built:
    build: {{context: ., args: {{BASE_IMAGE: "{base_image}"}}}}
    image: doctortest/built:1
    container_name: doctortest-built
  pulled:
    image: ${{PULLED_IMAGE:-doctortest/pulled:1}}
    container_name: doctortest-pulled
""")
    return path


def test_images_check_missing_unpinned_and_all_present(docker_cleanup, tmp_path):
    engine = docker_cleanup
    cf = ComposeFile.load(_mini_compose(tmp_path, "base@sha256:" + "a" * 64), {})
    refs = [cf.service(s)["image"] for s in ("built", "pulled")]
    missing = checks.images(cf, facts.docker_facts(engine.base_url, refs, [], []), ["built", "pulled"])
    assert missing.status == "fail" and "docker compose build built" in missing.details[0]
    base = engine.client.images.get(engine.image)
    try:
        for ref in refs:
            base.tag(ref)
        present = checks.images(cf, facts.docker_facts(engine.base_url, refs, [], []), ["built", "pulled"])
        assert present.status == "warn" and "pulled: doctortest/pulled:1 is not pinned" in present.details[0]
        only_built = checks.images(cf, facts.docker_facts(engine.base_url, refs, [], []), ["built"])
        assert only_built.status == "ok"
        pinned_text = (tmp_path / "compose.yaml").read_text()
        unpinned_base = ComposeFile.load(_mini_compose(tmp_path, "nvcr.io/nvidia/pytorch:25.10-py3"), {})
        (tmp_path / "compose.yaml").write_text(pinned_text)
        assert checks.images(unpinned_base, facts.docker_facts(engine.base_url, refs, [], []),
                             ["built"]).status == "warn"
        no_commit = tmp_path / "c2.yaml"
        no_commit.write_text((tmp_path / "compose.yaml").read_text().replace(
            'args: {BASE_IMAGE: "base@sha256:', 'args: {SRC_COMMIT: "", BASE_IMAGE: "base@sha256:'))
        tag_only = checks.images(ComposeFile.load(no_commit, {}), facts.docker_facts(engine.base_url, refs, [], []),
                                 ["built"])
        assert tag_only.status == "warn" and "SRC_COMMIT is empty" in tag_only.details[0]
    finally:
        for ref in refs:
            engine.client.images.remove(ref, noprune=True)


def test_containers_and_weights_checks_against_real_volumes(docker_cleanup, tmp_path):
    engine = docker_cleanup
    client = engine.client
    cf = ComposeFile.load(COMPOSE, {})
    need = checks.Need("sglang", "sglang", "/models/Mistral-Small-4-119B-2603-NVFP4", "dir")
    flux = checks.Need("comfyui", "comfyui", "/opt/ComfyUI/models/checkpoints/flux1-schnell-fp8.safetensors", "file")
    hf_repo = "/root/.cache/huggingface/hub/models--mistralai--Voxtral-4B-TTS-2603"
    voxtral = checks.Need("vllm-omni", "vllm-omni", hf_repo, "hf")
    names = ["sovhub-models", "sovhub-comfyui-models", "sovhub-hf-cache"]
    absent = checks.weights(cf, facts.docker_facts(engine.base_url, [], names, []), [need])
    assert absent.status == "fail" and "docker volume create sovhub-models" in absent.details[0]
    volumes = [client.volumes.create(n, labels={TEST_LABEL: "1"}) for n in names]
    try:
        d = facts.docker_facts(engine.base_url, [], names, ["sovhub-sglang"])
        empty = checks.weights(cf, d, [need, flux, voxtral])
        assert empty.status == "fail" and len(empty.details) == 3
        model = Path(d.volumes["sovhub-models"]) / "Mistral-Small-4-119B-2603-NVFP4"
        model.mkdir(parents=True)
        (model / "config.json").write_text(json.dumps({"quantization_config": {"quant_method": "modelopt",
                                                                                "quant_algo": "NVFP4"}}))
        (model / "model-00001-of-00002.safetensors").write_bytes(b"\0" * 8)
        ckpt = Path(d.volumes["sovhub-comfyui-models"]) / "checkpoints"
        ckpt.mkdir()
        (ckpt / "flux1-schnell-fp8.safetensors").write_bytes(b"\0" * 8)
        snap = Path(d.volumes["sovhub-hf-cache"]) / "hub/models--mistralai--Voxtral-4B-TTS-2603/snapshots/abc"
        snap.mkdir(parents=True)
        (snap / "consolidated.safetensors").write_bytes(b"\0" * 8)
        assert checks.weights(cf, d, [need, flux, voxtral]).status == "ok"
        assert checks.nvfp4_config(cf, d, need).status == "ok"
        (model / "config.json").write_text("{}")
        assert checks.nvfp4_config(cf, d, need).status == "fail"
        assert checks.containers(d, ["sovhub-sglang"], ["sovhub-sglang"]).status == "fail"
        engine.run_python("sovhub-sglang", ["-c", "import time; time.sleep(60)"])
        d = facts.docker_facts(engine.base_url, [], [], ["sovhub-sglang"])
        foreign = checks.containers(d, ["sovhub-sglang"], ["sovhub-sglang"], {"sovhub-sglang": "sglang"})
        assert foreign.status == "fail" and "not labelled sovhub.resident=sglang" in foreign.details[0]
        client.containers.get("sovhub-sglang").remove(force=True)
        engine.run_python("sovhub-sglang", ["-c", "import time; time.sleep(60)"],
                          labels={"sovhub.resident": "sglang"})
        d = facts.docker_facts(engine.base_url, [], [], ["sovhub-sglang"])
        assert checks.containers(d, ["sovhub-sglang"], ["sovhub-sglang"], {"sovhub-sglang": "sglang"}).status == "ok"
    finally:
        for c in client.containers.list(all=True, filters={"name": "sovhub-sglang"}):
            c.remove(force=True)
        for v in volumes:
            v.remove(force=True)


# --- the socket proxy: compose.yaml's allowlist in front of the real engine ------------------------

def test_docker_proxy_check_raw_socket_unreachable_filtered_and_too_strict(dockerd, tmp_path):
    assert checks.docker_endpoint(None).status == "warn"
    raw = checks.docker_endpoint(facts.endpoint_facts(dockerd.base_url, "sovhub-sglang"))
    assert raw.status == "warn" and "unfiltered" in raw.title
    gone = checks.docker_endpoint(facts.endpoint_facts(f"unix://{tmp_path}/x.sock", "sovhub-sglang"))
    assert gone.status == "fail"
    not_up_yet = checks.docker_endpoint(facts.endpoint_facts(f"unix://{tmp_path}/x.sock", "sovhub-sglang"), "created")
    assert not_up_yet.status == "warn" and "up" in not_up_yet.fix
    with SocketProxy(tmp_path / "p.sock", str(dockerd.socket), compose_rules(COMPOSE)) as proxy:
        good = checks.docker_endpoint(facts.endpoint_facts(proxy.url, "sovhub-sglang"))
        assert good.status == "ok", good
    strict = {k: v for k, v in compose_rules(COMPOSE).items() if k != "POST"}
    strict["GET"] = strict["GET"][:1]
    with SocketProxy(tmp_path / "s.sock", str(dockerd.socket), strict) as proxy:
        assert checks.docker_endpoint(facts.endpoint_facts(proxy.url, "sovhub-sglang")).status == "fail"


async def test_the_hub_drives_its_containers_through_the_compose_allowlist(docker_cleanup, tmp_path):
    """The docker driver, the ops skills' inspect and the drop-caches step all pass the proxy; creating passes not."""
    import docker as docker_sdk

    from hub.config.residents import DropCachesConfig
    from hub.gpu.drivers.docker import OWNER_LABEL, DockerDriver
    from hub.gpu.memory import MemoryGuard
    from skills.ops import dockerctl

    engine = docker_cleanup
    engine.client.containers.create(engine.image, ["sh", "-c", "exit 0"], name="sovhub-drop-caches",
                                    labels={TEST_LABEL: "1"}, network_mode="none")
    engine.client.containers.create(engine.image, ["sh", "-c", "echo loaded; sleep 60"], name="sovhub-comfyui",
                                    labels={TEST_LABEL: "1", OWNER_LABEL: "comfyui"}, network_mode="none", init=True)
    with SocketProxy(tmp_path / "p.sock", str(engine.socket), compose_rules(COMPOSE)) as proxy:
        driver = DockerDriver("comfyui", container="sovhub-comfyui", docker_host=proxy.url)
        await driver.start()
        assert await driver.is_running()
        info = dockerctl.inspect(proxy.url, "sovhub-comfyui", 10)
        assert info.status == "running"
        await driver.stop(1)
        assert not await driver.is_running()
        guard = MemoryGuard(drop_caches=DropCachesConfig(container="sovhub-drop-caches", docker_host=proxy.url,
                                                         timeout_s=20))
        assert await guard.drop() == ""
        assert ("POST", next(p for m, p in proxy.seen if p.endswith("/sovhub-drop-caches/start"))) in proxy.seen
        client = docker_sdk.DockerClient(base_url=proxy.url)
        with pytest.raises(docker_sdk.errors.APIError) as refused:
            client.containers.create(engine.image, ["true"], name="sovhub-evil", privileged=True)
        assert refused.value.response.status_code == 403
        client.close()
    failing = MemoryGuard(drop_caches=DropCachesConfig(command=["sh", "-c", "echo no >&2; exit 3"]))
    assert "exited with 3: no" in await failing.drop()


# --- the command, here (no GPU) ------------------------------------------------------------------

def test_sovhub_doctor_runs_here_and_says_no_gpu(dockerd, tmp_path):
    (tmp_path / "bin").mkdir()
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "hub.cli", "doctor", "--compose", str(COMPOSE), "--docker", dockerd.base_url,
           "--meminfo", _meminfo(tmp_path, 119.7, 115)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("❌ gpu") and "no GPU" in lines[0]
    for check_id in ("config", "memory", "exclusive", "sglang_flags"):
        assert any(line.startswith(f"✅ {check_id}") for line in lines), (check_id, out.stdout)
    assert len(lines) < 60, "one screen"
    as_json = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    report = json.loads(as_json.stdout)
    assert report["status"] == "fail" and {c["id"] for c in report["checks"]} >= {
        "gpu", "gpu_runtime", "memory", "exclusive", "images", "weights", "ports", "secrets", "docker_proxy",
        "blog", "sglang_flags"}
    assert isinstance(DockerFacts(url="x", reachable=False), DockerFacts)


@pytest.mark.parametrize("compose_text", [
    "services: {sglang: just-a-string}\n",
    "services:\n  hub: {environment: {SOVHUB_CONFIG: /etc/sovhub/hub.yaml},\n"
    "        volumes: [./nope.yaml:/etc/sovhub/hub.yaml]}\n",
    "name: [1, 2]\nservices: {hub: {volumes: [{type: bind}]}}\n",
    "not: a compose file\n",
    ": : :\n",
])
def test_the_doctor_reports_a_broken_stack_instead_of_crashing(tmp_path, compose_text):
    from hub.doctor.run import DoctorInputs, run

    (tmp_path / "compose.yaml").write_text(compose_text)
    lines = run(DoctorInputs(compose=tmp_path / "compose.yaml", docker_url=f"unix://{tmp_path}/none.sock",
                             path=str(tmp_path), environ={}))
    assert lines[0].id == "gpu" and len(lines) >= 2
    assert lines[-1].status == "fail"
