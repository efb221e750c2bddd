"""The GB10 compose stack is valid Compose and agrees with config/hub.gb10.yaml.

The file is interpolated the way `docker compose` does (`${VAR:-default}` with an empty
environment), validated by an independent Compose-spec parser, then cross-checked: every resident
of the hub config is a service with the same container name, port and health URL.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from hub.config import check_config, load_config

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "compose" / "compose.yaml"
HUB_CONFIG = ROOT / "config" / "hub.gb10.yaml"
MODEL_FLAGS_SGLANG = ("--enable-metrics",)

_VAR = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<default>[^}]*))?\})")


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR-default}, $$ (a literal $)."""
    env = env or {}

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, default = m.group("name"), m.group("op"), m.group("default")
        value = env.get(name)
        if op in (":-", ":?") and not value:
            value = None
        if value is None:
            if op and op.endswith("?"):
                raise AssertionError(f"variable {name} is required by compose.yaml: {default}")
            return default or ""
        return value

    return _VAR.sub(sub, text)


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


def test_weight_volumes_are_external_so_they_survive_rebuilds_and_down_v(compose):
    volumes = compose["volumes"]
    for key in ("models", "hf-cache", "comfyui-models", "data"):
        assert volumes[key].get("external") is True, f"volume {key} must be external"
    mounts = {s: [v.split(":")[0] for v in svc.get("volumes", [])] for s, svc in compose["services"].items()}
    assert "models" in mounts["sglang"] and "comfyui-models" in mounts["comfyui"]
    assert "hf-cache" in mounts["vllm-omni"]


def test_hub_service_mounts_docker_socket_config_and_data(compose, hub_config):
    hub = compose["services"]["hub"]
    volumes = [v.split(":") for v in hub["volumes"]]
    assert ["/var/run/docker.sock", "/var/run/docker.sock"] in volumes
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
