"""Gather the facts once, run every check, in the order of a first start."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from hub.config import HubConfig, check_config, load_config
from hub.doctor import checks, facts
from hub.doctor.composefile import ComposeError, ComposeFile, server_args
from hub.doctor.report import Check

HUB_SERVICE = "hub"
SECRETS_DIR = "/run/secrets/"


@dataclass
class DoctorInputs:
    compose: Path
    config: Path | None = None          # default: what the compose file mounts as the hub's config
    meminfo: str | None = None          # default: residents.memory_guard.meminfo
    docker_url: str | None = None       # the engine itself (default: DOCKER_HOST / the default socket)
    path: str | None = None             # PATH to find nvidia-smi on (default: $PATH)
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))


def default_compose(cwd: Path | None = None) -> Path:
    cwd = cwd or Path.cwd()
    for candidate in (cwd / "compose" / "compose.yaml", cwd / "compose.yaml",
                      Path(__file__).resolve().parents[2] / "compose" / "compose.yaml"):
        if candidate.is_file():
            return candidate
    return cwd / "compose" / "compose.yaml"


def _config_path(compose: ComposeFile) -> Path | None:
    target = str((compose.service(HUB_SERVICE).get("environment") or {}).get("SOVHUB_CONFIG", ""))
    found = compose.locate(HUB_SERVICE, target) if target else None
    return Path(found[0].source) if found and found[0].kind == "bind" else None


def _load(path: Path, compose: ComposeFile) -> tuple[HubConfig | None, str]:
    """The hub config with /run/secrets/NAME read from the compose secret files (placeholders if absent)."""
    problems = check_config(path, environ={})
    if problems:
        return None, "\n".join(str(p) for p in problems)
    text = path.read_text()
    scratch = Path(tempfile.mkdtemp(prefix="sovhub-doctor-"))
    for name in set(re.findall(re.escape(SECRETS_DIR) + r"([\w.-]+)", text)):
        real = compose.secret_file(name)
        if real is not None and real.is_file() and os.access(real, os.R_OK):
            text = text.replace(SECRETS_DIR + name, str(real))
        else:
            (scratch / name).write_text("doctor-placeholder-secret-value\n")
            text = text.replace(SECRETS_DIR + name, str(scratch / name))
    copy = scratch / "hub.yaml"
    copy.write_text(text)
    try:
        return load_config(copy, environ={}), ""
    except Exception as exc:  # a config error the checker did not see: report, never crash the doctor
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # secrets are read at load time


def _container(compose: ComposeFile, service: str) -> str:
    return str(compose.service(service).get("container_name") or service)


def _host_socket(compose: ComposeFile, docker: facts.DockerFacts, url: str | None) -> str | None:
    """The hub's Docker URL as the host sees it (a unix socket inside a volume of the hub service)."""
    if not url:
        return None
    parsed = urlparse(url)
    if parsed.scheme != "unix":
        return url
    found = compose.locate(HUB_SERVICE, parsed.path)
    if found is None:
        return url
    mount, rest = found
    base = mount.source if mount.kind == "bind" else docker.volumes.get(mount.source)
    return f"unix://{Path(base) / rest}" if base else url


def _hub_docker_url(config: HubConfig) -> str | None:
    for r in config.residents.servers.values():
        if r.driver.type == "docker" and r.driver.docker_host:
            return r.driver.docker_host
    return config.skills.ops.docker_url


def _needs(config: HubConfig, compose: ComposeFile) -> tuple[list[checks.Need], checks.Need | None]:
    needs: list[checks.Need] = []
    nvfp4_need = None
    for name, r in config.residents.servers.items():
        service = r.driver.compose_service or name
        if service not in compose.services:
            continue
        cmd = compose.command(service)
        if r.kind == "llm":
            args = server_args(cmd)
            for flag in ("model_path", "speculative_draft_model_path"):
                if isinstance(args.get(flag), str):
                    needs.append(checks.Need(name, service, args[flag], "dir"))
            if isinstance(args.get("model_path"), str) and "nvfp4" in args["model_path"].lower():
                nvfp4_need = checks.Need(name, service, args["model_path"], "dir")
        elif r.kind == "image":
            checkpoint = f"/opt/ComfyUI/models/checkpoints/{config.skills.content.checkpoint}"
            needs.append(checks.Need(name, service, checkpoint, "file"))
        elif r.kind == "tts" and len(cmd) > 2 and cmd[:2] == ["vllm", "serve"]:
            env = compose.service(service).get("environment") or {}
            hf_home = str(env.get("HF_HOME", "/root/.cache/huggingface"))
            repo = "models--" + cmd[2].replace("/", "--")
            needs.append(checks.Need(name, service, f"{hf_home}/hub/{repo}", "hf"))
    return needs, nvfp4_need


def _ports(config: HubConfig, compose: ComposeFile) -> dict[int, str]:
    wanted: dict[int, str] = {}
    for name, r in config.residents.servers.items():
        port = urlparse(r.base_url).port
        if port:
            wanted[port] = r.driver.container or _container(compose, r.driver.compose_service or name)
    hub = _container(compose, HUB_SERVICE)
    if config.mcp.enabled:
        wanted[config.mcp.port] = hub
    if config.status.enabled:
        wanted[config.status.port] = hub
    if config.api.enabled and config.api.port:  # the OpenAI/Anthropic-compatible gateway (bridges/api)
        wanted[config.api.port] = hub
    for service, svc in compose.services.items():
        listen = str((svc.get("environment") or {}).get("BLOG_LISTEN", ""))
        if listen.rsplit(":", 1)[-1].isdigit():
            wanted[int(listen.rsplit(":", 1)[-1])] = _container(compose, service)
    return wanted


def _git_remotes(path: Path) -> list[str] | None:
    try:
        out = subprocess.run(["git", "-C", str(path), "remote", "-v"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [line.split()[1] for line in out.stdout.splitlines() if line.endswith("(push)")]


def run(inputs: DoctorInputs) -> list[Check]:
    """Every check; an unexpected error ends the report with a failing line, never a traceback."""
    out: list[Check] = []
    try:
        _run(inputs, out)
    except Exception as exc:
        out.append(Check("doctor", "fail", f"stopped after {len(out)} check(s): {type(exc).__name__}: {exc}",
                         fix="SOVHUB_DEBUG=1 sovhub doctor shows where"))
        if os.environ.get("SOVHUB_DEBUG"):
            raise
    return out


def _run(inputs: DoctorInputs, out: list[Check]) -> None:
    out.append(checks.gpu(facts.nvidia_smi(inputs.path or inputs.environ.get("PATH"))))
    try:
        compose = ComposeFile.load(inputs.compose, inputs.environ)
    except (ComposeError, ValueError) as exc:
        out.append(Check("compose", "fail", str(exc), fix="run the doctor from the repository (or pass --compose)"))
        return
    config_path = inputs.config or _config_path(compose)
    if config_path is None:
        out.append(Check("config", "fail", "no hub config: the hub service mounts none (SOVHUB_CONFIG)",
                         fix="pass --config PATH"))
        return
    config, error = _load(config_path, compose)
    out.append(checks.config_check(error, config_path))
    # the stack proper: what `up` starts and what the hub starts (profile models); optional profiles
    # (matrix: a homeserver of its own; setup: the one-off download) are not required
    image_services = [s for s, svc in compose.services.items()
                      if svc.get("image") and set(svc.get("profiles") or []) <= {"models"}]
    residents = config.residents.servers if config else {}
    model_containers = [r.driver.container or _container(compose, r.driver.compose_service or n)
                        for n, r in residents.items() if r.driver.type == "docker"]
    helpers = [_container(compose, s) for s, svc in compose.services.items()
               if "models" in (svc.get("profiles") or []) and _container(compose, s) not in model_containers]
    always = [_container(compose, s) for s, svc in compose.services.items() if not svc.get("profiles")]
    volumes = sorted({m.source for s in compose.services for m in compose.mounts(s) if m.kind == "volume"})
    docker = facts.docker_facts(inputs.docker_url, [compose.service(s)["image"] for s in image_services], volumes,
                                sorted({*model_containers, *helpers, *always}))
    out.append(checks.gpu_runtime(docker))
    if config is not None:
        mem, mem_error = facts.meminfo(inputs.meminfo or config.residents.memory_guard.meminfo)
        out.append(checks.memory(config, mem, mem_error))
        out.append(checks.exclusive(config, set(residents)))
    out.append(checks.images(compose, docker, image_services))
    owners = {r.driver.container or _container(compose, r.driver.compose_service or n): n
              for n, r in residents.items() if r.driver.type == "docker"}
    out.append(checks.containers(docker, sorted({*model_containers, *helpers, *always}), always, owners))
    if config is None:
        return
    needs, nvfp4_need = _needs(config, compose)
    out.append(checks.weights(compose, docker, needs))
    if nvfp4_need is not None:
        out.append(checks.nvfp4_config(compose, docker, nvfp4_need))
    wanted = _ports(config, compose)
    in_use = {p: facts.port_in_use(p) for p in wanted}
    out.append(checks.ports(wanted, in_use, docker.containers,
                            {p: facts.listener(p) for p, used in in_use.items() if used}))
    hub_secrets = [s if isinstance(s, str) else s.get("source")
                   for s in compose.service(HUB_SERVICE).get("secrets") or []]
    files = {name: compose.secret_file(name) for name in hub_secrets if name}
    text = config_path.read_text() if config_path else ""
    required = {n for n in files if f"{SECRETS_DIR}{n}" in text and
                (n != "matrix_password" or config.matrix.enabled) and n not in ("anthropic_api_key", "status_token")}
    out.append(checks.secrets(files, required))
    hub_url = _hub_docker_url(config)
    host_url = _host_socket(compose, docker, hub_url)
    endpoint = None
    if host_url:
        endpoint = facts.endpoint_facts(host_url, model_containers[0] if model_containers else "sovhub-hub")
    proxies = [_container(compose, n) for n, svc in compose.services.items()
               if any(str(a).startswith("-proxysocketendpoint=") for a in svc.get("command") or [])]
    out.append(checks.docker_endpoint(endpoint, docker.containers.get(proxies[0]) if proxies else "running"))
    blog_dir = config.skills.content.blog_dir
    blog_host = None
    if blog_dir is not None:
        found = compose.locate(HUB_SERVICE, str(blog_dir))
        blog_host = Path(found[0].source) / found[1] if found and found[0].kind == "bind" else Path(blog_dir)
    remotes = _git_remotes(blog_host) if blog_host is not None and (blog_host / ".git").exists() else None
    out.append(checks.blog(blog_host, config.skills.content.git_push, remotes,
                           blog_host is not None and (blog_host / "node_modules").is_dir(),
                           compose.secret_file("blog_deploy_key")))
    llm = config.llm.local.resident
    if llm in residents and (residents[llm].driver.compose_service or llm) in compose.services:
        out.append(checks.sglang_flags(config, compose, residents[llm].driver.compose_service or llm))
