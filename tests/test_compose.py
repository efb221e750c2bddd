"""The GB10 compose stack is valid Compose and agrees with config/hub.gb10.yaml.

The file is interpolated the way `docker compose` does (`${VAR:-default}` with an empty
environment), validated by an independent Compose-spec parser, then cross-checked: every resident
of the hub config is a service with the same container name, port and health URL.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.config import check_config, load_config
from hub.doctor.composefile import ComposeFile, interpolate, server_args

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "compose" / "compose.yaml"
HUB_CONFIG = ROOT / "config" / "hub.gb10.yaml"
MODEL_FLAGS_SGLANG = ("--enable-metrics",)

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(interpolate(COMPOSE.read_text()))


@pytest.fixture(scope="module")
def hub_config(tmp_path_factory):
    """config/hub.gb10.yaml loaded strictly, with its Docker secrets replaced by temp files."""
    secrets = tmp_path_factory.mktemp("secrets")
    text = HUB_CONFIG.read_text()
    for name in set(re.findall(r"/run/secrets/([\w.-]+)", text)):
        (secrets / name).write_text(f"test-{name}\n")
    copy = secrets / "hub.yaml"
    copy.write_text(text.replace("/run/secrets/", f"{secrets}/"))
    return load_config(copy, environ={})


def _command(service: dict) -> list[str]:
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def _flag(cmd: list[str], name: str) -> str | None:
    for i, arg in enumerate(cmd):
        if arg == name and i + 1 < len(cmd):
            return cmd[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _health_urls(service: dict) -> list[str]:
    test = service.get("healthcheck", {}).get("test", [])
    text = " ".join(test) if isinstance(test, list) else str(test)
    return re.findall(r"https?://[^\s'\"]+", text)


def test_compose_file_is_valid_compose_spec():
    compose_spec = pytest.importorskip("compose_spec", reason="the compose-spec validator is a dev extra")
    # YAML merge keys (`<<: *gpu`) are resolved by the YAML loader, as in `docker compose`.
    parsed = compose_spec.PyCompose.from_json(json.dumps(yaml.safe_load(interpolate(COMPOSE.read_text()))))
    assert {"sglang", "comfyui", "vllm-omni", "hub", "synapse"} <= set(parsed.service_names())


def test_hub_config_is_valid_with_only_deployment_secrets_missing():
    warnings: list = []
    issues = check_config(HUB_CONFIG, environ={}, warnings=warnings)
    assert all("/run/secrets/" in w.message for w in warnings), [str(w) for w in warnings]
    # a secret that is absent here may fail its own checks (e.g. a minimum length): nothing else may
    missing = {w.path.rsplit("_", 1)[0] for w in warnings}
    assert [str(i) for i in issues if i.path not in missing] == []


def test_every_resident_is_a_compose_service_with_same_container_port_and_health_url(compose, hub_config):
    services = compose["services"]
    residents = hub_config.residents.servers
    assert set(residents) == {"sglang", "comfyui", "vllm-omni"}
    for name, resident in residents.items():
        service_name = resident.driver.compose_service
        assert service_name in services, f"resident {name}: no compose service {service_name!r}"
        service = services[service_name]
        assert resident.driver.type == "docker"
        assert service["container_name"] == resident.driver.container
        assert service.get("network_mode") == "host", f"{service_name}: URLs assume the host network"
        port = urlparse(resident.base_url).port
        assert _flag(_command(service), "--port") == str(port), f"{service_name} does not listen on {port}"
        assert _flag(_command(service), "--host") in ("127.0.0.1", None)
        assert resident.ready.url in _health_urls(service), f"{service_name}: healthcheck differs from ready URL"
        assert urlparse(resident.ready.url).port == port


def test_only_the_default_model_starts_with_the_stack(compose, hub_config):
    services = compose["services"]
    for name, resident in hub_config.residents.servers.items():
        service = services[resident.driver.compose_service]
        assert service["restart"] == "no", f"{name}: the hub owns the model lifecycle"
        if resident.default:
            assert not service.get("profiles"), f"default resident {name} must start with `up`"
        else:
            assert service.get("profiles"), f"{name} must only be created, never started by `up`"
    assert not services["hub"].get("profiles")
    assert services["synapse"]["profiles"] == ["matrix"]
    for name in ("sglang", "comfyui", "vllm-omni", "hub"):
        assert "sglang" not in (services[name].get("depends_on") or {}), "no service may pull a model up"


def test_sglang_serves_mistral_small_4_nvfp4_with_eagle_on_the_gb10_flags(compose, hub_config):
    sglang = compose["services"]["sglang"]
    cmd = _command(sglang)
    assert "nightly" in sglang["image"] and "cu13" in sglang["image"]
    assert "NVFP4" in _flag(cmd, "--model-path")
    assert _flag(cmd, "--speculative-algorithm") == "EAGLE"
    assert "eagle" in _flag(cmd, "--speculative-draft-model-path")
    assert sglang["environment"]["SGLANG_ENABLE_SPEC_V2"] == "1"
    assert _flag(cmd, "--speculative-eagle-topk") == "1", "SGLANG_ENABLE_SPEC_V2 requires eagle-topk 1"
    assert _flag(cmd, "--attention-backend") == "triton"
    assert _flag(cmd, "--tool-call-parser") == "mistral"
    assert "--enable-metrics" in cmd
    assert _flag(cmd, "--served-model-name") == hub_config.llm.local.model
    assert int(_flag(cmd, "--context-length")) == hub_config.llm.local.context_window
    assert urlparse(hub_config.llm.local.base_url).port == int(_flag(cmd, "--port"))
    start_period = sglang["healthcheck"]["start_period"]
    assert start_period.endswith("m") and int(start_period[:-1]) >= 10, "cold start takes minutes"


def test_voxtral_runs_under_vllm_omni(compose):
    cmd = _command(compose["services"]["vllm-omni"])
    assert cmd[:3] == ["vllm", "serve", "mistralai/Voxtral-4B-TTS-2603"] and "--omni" in cmd


def _sources(service: dict) -> list[str]:
    return [v["source"] if isinstance(v, dict) else v.split(":")[0] for v in service.get("volumes", [])]


def test_weight_volumes_are_external_so_they_survive_rebuilds_and_down_v(compose):
    volumes = compose["volumes"]
    for key in ("models", "hf-cache", "comfyui-models", "data"):
        assert volumes[key].get("external") is True, f"volume {key} must be external"
    mounts = {s: _sources(svc) for s, svc in compose["services"].items()}
    assert "models" in mounts["sglang"] and "comfyui-models" in mounts["comfyui"]
    assert "hf-cache" in mounts["vllm-omni"]


def test_hub_service_mounts_the_docker_proxy_socket_config_and_data(compose, hub_config):
    hub = compose["services"]["hub"]
    volumes = [v.split(":") for v in hub["volumes"] if isinstance(v, str)]
    assert not any("docker.sock" in part for v in volumes for part in v), "the raw socket is root on the host"
    assert ["docker-proxy", "/run/sovhub-docker"] in volumes
    config_path = hub["environment"]["SOVHUB_CONFIG"]
    config_mount = next(v for v in volumes if v[1] == config_path)
    assert (COMPOSE.parent / config_mount[0]).resolve() == HUB_CONFIG
    assert config_mount[2] == "ro"
    assert ["data", str(hub_config.storage.data_dir)] in volumes
    assert _flag(_command(hub), "--config") == config_path
    health = _health_urls(hub)
    assert health and urlparse(health[0]).port == hub_config.status.port
    assert (COMPOSE.parent / hub["build"]["context"] / hub["build"]["dockerfile"]).is_file()


def test_secrets_the_config_reads_are_given_to_the_hub(compose):
    wanted = set(re.findall(r"/run/secrets/([\w.-]+)", HUB_CONFIG.read_text()))
    assert wanted <= set(compose["secrets"])
    assert wanted <= set(compose["services"]["hub"]["secrets"])


def test_synapse_listens_where_the_hub_config_looks_for_it(compose, hub_config):
    synapse = compose["services"]["synapse"]
    port = urlparse(hub_config.matrix.homeserver).port
    assert synapse["environment"]["SYNAPSE_HTTP_PORT"] == str(port)
    assert any(urlparse(u).port == port for u in _health_urls(synapse))


def test_built_images_have_their_dockerfiles(compose):
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            context = COMPOSE.parent / build["context"]
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name


def test_interpolation_follows_compose_rules():
    assert interpolate("${A:-x} ${B-y} ${C} $$D", {"B": ""}) == "x   $D"
    assert interpolate("${A:-x}", {"A": "set"}) == "set"


# --- the GB10 stack's own promises -------------------------------------------------------------

PROXY_SOCKET = "unix:///run/sovhub-docker/docker.sock"


def _proxy_rules(compose: dict) -> dict[str, list[re.Pattern]]:
    """docker-proxy's -allowMETHOD=regex flags, anchored as wollomatic/socket-proxy anchors them."""
    rules: dict[str, list[re.Pattern]] = {}
    for arg in _command(compose["services"]["docker-proxy"]):
        m = re.match(r"^-allow(GET|HEAD|POST|PUT|DELETE|PATCH)=(.+)$", arg)
        if m:
            rules.setdefault(m.group(1), []).append(re.compile(f"^{m.group(2)}$"))
    return rules


def _allowed(rules, method: str, path: str) -> bool:
    return any(r.match(path) for r in rules.get(method, []))


def test_sglang_command_passes_the_known_good_flags_diagnose_sglang_checks(compose, hub_config):
    from skills.ops import flags

    sglang = compose["services"]["sglang"]
    args = server_args(_command(sglang))
    env = {k: str(v) for k, v in sglang["environment"].items()}
    assert flags.check(args, hub_config.skills.ops.gb10_flags, env) == []
    assert args["sampling_backend"] == "pytorch"
    assert hub_config.skills.ops.health_timeout_s > float(env["SGLANG_HEALTH_CHECK_TIMEOUT"]), \
        "the ops probe must outwait the server's own health check"


def test_vllm_omni_takes_per_stage_memory_from_the_deploy_overlay_and_no_global_fraction(compose, hub_config):
    cmd = _command(compose["services"]["vllm-omni"])
    assert "--gpu-memory-utilization" not in " ".join(cmd), "a global flag overrides every stage's fraction"
    overlay_path = _flag(cmd, "--deploy-config")
    overlay_file = COMPOSE.parent / "vllm-omni" / Path(overlay_path).name
    dockerfile = (COMPOSE.parent / "vllm-omni" / "Dockerfile").read_text()
    assert f"COPY {overlay_file.name} {overlay_path}" in dockerfile
    overlay = yaml.safe_load(overlay_file.read_text())
    assert overlay["base_config"] == "voxtral_tts.yaml"
    fractions = {s["stage_id"]: s["gpu_memory_utilization"] for s in overlay["stages"]}
    assert set(fractions) == {0, 1}
    assert str(fractions) .replace(" ", "") in dockerfile.replace(" ", ""), "the build asserts the same figures"
    cuda_gib = 119.7  # the GB10 as CUDA counts it
    assert sum(fractions.values()) * cuda_gib + 2 <= hub_config.residents.servers["vllm-omni"].memory_gb


def test_vllm_omni_release_and_vllm_are_pinned_to_the_same_minor(compose):
    args = compose["services"]["vllm-omni"]["build"]["args"]
    vllm, omni = args["VLLM_VERSION"], args["VLLM_OMNI_VERSION"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", vllm) and re.fullmatch(r"\d+\.\d+\.\d+", omni)
    assert vllm.split(".")[:2] == omni.split(".")[:2]
    assert compose["services"]["vllm-omni"]["image"].endswith(":" + omni)


def test_the_docker_proxy_allows_what_the_hub_does_and_nothing_that_makes_containers(compose, hub_config):
    rules = _proxy_rules(compose)
    names = [r.driver.container for r in hub_config.residents.servers.values()]
    helper = hub_config.residents.memory_guard.drop_caches.container
    assert helper == compose["services"]["drop-caches"]["container_name"]
    for name in [*names, helper]:
        for action in ("start", "stop", "restart"):
            assert _allowed(rules, "POST", f"/v1.41/containers/{name}/{action}"), (name, action)
        assert _allowed(rules, "GET", f"/v1.41/containers/{name}/json")
        assert _allowed(rules, "GET", f"/v1.41/containers/{name}/logs")
    assert _allowed(rules, "GET", "/_ping") and _allowed(rules, "GET", "/version")
    for method, path in [("POST", "/v1.41/containers/create"), ("POST", "/v1.41/containers/sovhub-hub/stop"),
                         ("POST", "/v1.41/containers/sovhub-sglang/exec"), ("POST", "/v1.41/exec/abc/start"),
                         ("POST", "/v1.41/containers/other/start"), ("GET", "/v1.41/containers/other/json"),
                         ("GET", "/v1.41/images/json"), ("DELETE", "/v1.41/containers/sovhub-sglang"),
                         ("POST", "/v1.41/containers/sovhub-sglang/start/../../create")]:
        assert not _allowed(rules, method, path), (method, path)
    for r in hub_config.residents.servers.values():
        assert r.driver.docker_host == PROXY_SOCKET
    assert hub_config.skills.ops.docker_url == PROXY_SOCKET
    assert hub_config.residents.memory_guard.drop_caches.docker_host == PROXY_SOCKET
    proxy = compose["services"]["docker-proxy"]
    assert "/var/run/docker.sock:/var/run/docker.sock:ro" in proxy["volumes"]
    assert proxy["cap_drop"] == ["ALL"] and proxy["read_only"] is True
    assert proxy["user"] == "0:0", "the image's default user 65534 cannot open the root:docker socket"


def test_drop_caches_helper_is_privileged_one_shot_and_never_started_by_up(compose):
    helper = compose["services"]["drop-caches"]
    assert helper["privileged"] is True and helper["restart"] == "no" and helper["profiles"] == ["models"]
    assert "echo 3 > /proc/sys/vm/drop_caches" in " ".join(helper["entrypoint"])
    assert helper["network_mode"] == "none"


def test_blog_is_built_in_the_hub_and_served_by_nginx_from_the_same_checkout(compose, hub_config):
    hub, blog = compose["services"]["hub"], compose["services"]["blog"]
    hub_blog = next(v for v in hub["volumes"] if isinstance(v, dict) and v["target"] == str(
        hub_config.skills.content.blog_dir))
    served = next(v for v in blog["volumes"] if isinstance(v, dict))
    assert hub_blog["source"] == served["source"], "nginx must serve the checkout the hub builds"
    for mount in (hub_blog, served):
        assert mount["bind"]["create_host_path"] is False, "a missing site must fail, not become an empty dir"
    assert served["read_only"] is True
    template = (COMPOSE.parent / "blog-nginx" / "default.conf.template").read_text()
    assert f"root {served['target']}/{hub_config.skills.content.dist_subdir};" in template
    assert hub_config.skills.content.build_command[:1] == ["npm"]
    dockerfile = (COMPOSE.parent / "hub" / "Dockerfile").read_text()
    assert "node" in dockerfile and "openssh-client" in dockerfile
    assert f"safe.directory {hub_config.skills.content.blog_dir}" in dockerfile, "git refuses a foreign-owned repo"
    assert {"blog_deploy_key", "blog_known_hosts"} <= set(hub["secrets"])
    assert "/run/secrets/blog_deploy_key" in hub["environment"]["GIT_SSH_COMMAND"]


def test_fetch_models_completes_the_nvfp4_config_with_the_doctors_own_check(compose):
    fetch = compose["services"]["fetch-models"]
    mount = next(v for v in fetch["volumes"] if v.endswith(":/nvfp4.py:ro"))
    assert (COMPOSE.parent / mount.split(":")[0]).resolve() == ROOT / "hub" / "doctor" / "nvfp4.py"
    assert "python3 /nvfp4.py complete" in (COMPOSE.parent / "scripts" / "fetch-models.sh").read_text()


def test_compose_file_loader_of_the_doctor_reads_this_file(tmp_path):
    cf = ComposeFile.load(COMPOSE, {})
    assert cf.volume_name("models") == "sovhub-models"
    mount, rest = cf.locate("sglang", "/models/Mistral-Small-4-119B-2603-NVFP4")
    assert (mount.kind, mount.source, rest) == ("volume", "sovhub-models", "Mistral-Small-4-119B-2603-NVFP4")
    assert cf.image_vars["sglang"] == "SGLANG_IMAGE"
    (tmp_path / "compose.yaml").write_text(COMPOSE.read_text())
    (tmp_path / ".env").write_text("# pinned\nSGLANG_IMAGE='lmsysorg/sglang:x@sha256:abc'\n")
    assert ComposeFile.load(tmp_path / "compose.yaml", {}).service("sglang")["image"] == "lmsysorg/sglang:x@sha256:abc"


@functools.cache
def _shipped_proxy_rules() -> dict[str, list[re.Pattern]]:
    return _proxy_rules(yaml.safe_load(interpolate(COMPOSE.read_text())))


ALLOWED_TO_RUN = {"sovhub-sglang", "sovhub-comfyui", "sovhub-vllm-omni", "sovhub-drop-caches"}


@settings(max_examples=300, deadline=None)
@given(name=st.from_regex(r"[A-Za-z0-9_.%/-]{1,40}", fullmatch=True),
       action=st.sampled_from(["start", "stop", "restart", "kill", "exec", "attach", "update", "wait", "archive"]),
       suffix=st.sampled_from(["", "/", "/x", "/../create", "?x=1"]),
       version=st.sampled_from(["/v1.41", "/v1.47", "", "/v2.0"]))
def test_the_proxy_lets_nothing_run_but_the_model_servers_and_the_helper(name, action, suffix, version):
    """Property: a POST passes only as start/stop/restart of one of four names, whatever the path holds."""
    rules = _shipped_proxy_rules()
    path = f"{version}/containers/{name}/{action}{suffix}"
    expected = (name in ALLOWED_TO_RUN and action in ("start", "stop", "restart") and suffix == ""
                and version.startswith("/v1."))
    assert _allowed(rules, "POST", path) == expected, path
