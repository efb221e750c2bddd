"""The doctor's checks: pure functions of the gathered facts, the hub config and the compose file."""

from __future__ import annotations

import itertools
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.config import HubConfig
from hub.doctor import nvfp4
from hub.doctor.composefile import ComposeFile, server_args
from hub.doctor.facts import DockerFacts, EndpointFacts, GpuFacts
from hub.doctor.report import Check
from hub.gpu.drivers.docker import OWNER_LABEL  # the driver adopts only containers labelled for it

MIN_CUDA = (13, 0)       # the cu13 SGLang image and vLLM 0.30's torch 2.13 are CUDA 13.0 builds
MIN_DRIVER = 580         # the first driver branch with CUDA 13.0
GPU_DRIVER_FIX = "install NVIDIA driver 580 or newer (DGX OS updates: sudo apt update && sudo apt full-upgrade)"


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split(".") if p)
    except ValueError:
        return ()


def gpu(g: GpuFacts) -> Check:
    if not g.found:
        return Check("gpu", "fail", f"no GPU: {g.error}",
                     fix="on the GB10: install the NVIDIA driver (nvidia-smi must work); elsewhere this is expected")
    title = f"{g.name or 'GPU'}, driver {g.driver or '?'}, CUDA {g.cuda or '?'}"
    problems = []
    if not g.cuda or _version(g.cuda) < MIN_CUDA:
        problems.append(f"CUDA {g.cuda or 'unknown'}: the images need CUDA {'.'.join(map(str, MIN_CUDA))} or newer")
    if not g.driver or (_version(g.driver) or (0,))[0] < MIN_DRIVER:
        problems.append(f"driver {g.driver or 'unknown'}: CUDA 13 needs driver {MIN_DRIVER} or newer")
    if problems:
        return Check("gpu", "fail", title, problems, fix=GPU_DRIVER_FIX)
    if "GB10" not in g.name:
        return Check("gpu", "warn", title, [f"not a GB10 ({g.name}): the memory figures in the config assume one"])
    return Check("gpu", "ok", title)


def _no_docker(check_id: str) -> Check:
    return Check(check_id, "fail", "not checked: Docker is unreachable (see gpu_runtime)")


def gpu_runtime(d: DockerFacts) -> Check:
    if not d.reachable:
        return Check("gpu_runtime", "fail", f"Docker unreachable at {d.url}", [d.error],
                     fix="start Docker (sudo systemctl start docker) or run the doctor as a user in the docker group")
    if "nvidia" in d.runtimes:
        return Check("gpu_runtime", "ok", f"Docker has the nvidia runtime ({', '.join(d.runtimes)})")
    return Check("gpu_runtime", "fail", "Docker has no nvidia runtime: containers cannot see the GPU",
                 [f"runtimes: {', '.join(d.runtimes) or 'none'}"],
                 fix="install nvidia-container-toolkit, then sudo nvidia-ctk runtime configure --runtime=docker "
                     "&& sudo systemctl restart docker")


def memory(config: HubConfig, mem: Mapping[str, float], error: str) -> Check:
    if error:
        return Check("memory", "fail", error, fix="set residents.memory_guard.meminfo to the meminfo file")
    total, avail = mem["MemTotal"], mem.get("MemAvailable", 0.0)
    pool = config.residents.pool
    servers = config.residents.servers
    title = f"{total:.1f} GiB total, {avail:.1f} GiB available; pool {pool.memory_gb:g} - reserve {pool.reserve_gb:g}"
    if pool.memory_gb > total + 0.5:
        return Check("memory", "fail", title,
                     [f"residents.pool.memory_gb is {pool.memory_gb:g} but this box has {total:.1f} GiB "
                      "(CUDA on the GB10 sees about 119.7 GiB, not 128)"],
                     fix=f"set residents.pool.memory_gb to {total:.1f} or less")
    largest = max(servers.items(), key=lambda kv: kv[1].memory_gb, default=None)
    if largest and avail < largest[1].memory_gb:
        return Check("memory", "warn", title,
                     [f"{largest[0]} needs {largest[1].memory_gb:g} GiB, {avail:.1f} GiB available now "
                      "(a model server still running? page cache?)"],
                     fix="stop what holds the memory (docker ps); sync; echo 3 | sudo tee /proc/sys/vm/drop_caches")
    return Check("memory", "ok", title)


def co_resident_pairs(config: HubConfig) -> list[tuple[str, str, float]]:
    """Pairs of residents the config lets the scheduler load together: both fit and neither is exclusive."""
    servers = config.residents.servers
    budget = config.residents.pool.memory_gb - config.residents.pool.reserve_gb
    out = []
    for (a, ra), (b, rb) in itertools.combinations(sorted(servers.items()), 2):
        if getattr(ra, "exclusive", False) or getattr(rb, "exclusive", False):
            continue
        if ra.memory_gb + rb.memory_gb <= budget:
            out.append((a, b, ra.memory_gb + rb.memory_gb))
    return out


def exclusive(config: HubConfig, model_servers: set[str]) -> Check:
    """On the GB10 the model servers are resident one at a time: no two of them may fit together."""
    pairs = [p for p in co_resident_pairs(config) if p[0] in model_servers and p[1] in model_servers]
    budget = config.residents.pool.memory_gb - config.residents.pool.reserve_gb
    if pairs:
        return Check("exclusive", "fail", f"{len(pairs)} pair(s) of model servers could be loaded together",
                     [f"{a} + {b} = {total:g} GiB fits the {budget:g} GiB budget and neither is exclusive"
                      for a, b, total in pairs],
                     fix="set `exclusive: true` on each of " + ", ".join(sorted(model_servers)))
    return Check("exclusive", "ok", f"{len(model_servers)} model servers, one at a time ({budget:g} GiB budget)")


def images(compose: ComposeFile, d: DockerFacts, services: list[str]) -> Check:
    """Every image present; pulled images pinned by digest (with the line that pins them)."""
    if not d.reachable:
        return _no_docker("images")
    missing, unpinned, stale, pins = [], [], [], []
    to_build: list[str] = []
    to_pull: list[str] = []
    builders = {compose.service(n).get("image"): n for n in services if compose.service(n).get("build")}
    seen: set[str] = set()
    for name in services:
        svc = compose.service(name)
        ref = svc.get("image")
        if not ref or ref in seen:
            continue
        seen.add(ref)
        info = d.images.get(ref)
        how = f"docker compose build {builders[ref]}" if ref in builders else f"docker compose pull {name}"
        if ref in builders and not svc.get("build"):
            svc = compose.service(builders[ref])  # e.g. drop-caches runs the hub's image
        if info is None or "error" in (info or {}):
            missing.append(f"{name}: {ref} is not here ({how})")
            (to_build if ref in builders else to_pull).append(builders.get(ref, name))
            continue
        if svc.get("build"):
            args = svc["build"].get("args") or {}
            base = str(args.get("BASE_IMAGE") or "")
            if base and "@sha256:" not in base:
                unpinned.append(f"{name}: built FROM {base}, not pinned by digest")
            unpinned.extend(f"{name}: build arg {key} is empty (the source is pinned by tag only)"
                            for key, value in args.items() if key.endswith("_COMMIT") and not value)
            continue
        digests = info.get("repo_digests") or []
        if "@sha256:" in ref:
            pinned = ref.split("@", 1)[1]
            if pinned not in {x.split("@", 1)[-1] for x in digests}:
                stale.append(f"{name}: the local image is not {pinned[:19]}... (docker compose pull {name})")
            continue
        var = compose.image_vars.get(name)
        digest = digests[0].split("@", 1)[1] if digests else ""
        unpinned.append(f"{name}: {ref} is not pinned by digest")
        if var and digest:
            pins.append(f"{var}={ref}@{digest}")
    if missing or stale:
        pulls = to_pull + [line.split(":")[0] for line in stale]
        steps = ([f"docker compose --profile models build {' '.join(to_build)}"] if to_build else []) + \
            ([f"docker compose pull {' '.join(pulls)}"] if pulls else [])
        return Check("images", "fail", f"{len(missing)} missing, {len(stale)} differ from their digest",
                     missing + stale + unpinned, fix=" && ".join(steps))
    if unpinned:
        fix = ("add to compose/.env: " + "  ".join(pins)) if pins else \
            "pin each by digest (docker image inspect --format '{{index .RepoDigests 0}}' IMAGE)"
        return Check("images", "warn", f"{len(seen)} images present, {len(unpinned)} not pinned by digest",
                     unpinned, fix=fix)
    return Check("images", "ok", f"{len(seen)} images present and pinned")


def containers(d: DockerFacts, created: list[str], running: list[str],
               owners: dict[str, str] | None = None) -> Check:
    """Every container created; each model container labelled for its resident; the stack running."""
    if not d.reachable:
        return _no_docker("containers")
    absent = [n for n in created if d.containers.get(n) is None]
    if absent:
        return Check("containers", "fail", f"not created: {', '.join(absent)}", [],
                     fix="docker compose --profile models create (after every image upgrade, too)")
    foreign = [f"{n} is not labelled {OWNER_LABEL}={r} (the hub will not start or stop it)"
               for n, r in sorted((owners or {}).items()) if (d.labels.get(n) or {}).get(OWNER_LABEL) != r]
    if foreign:
        return Check("containers", "fail", f"{len(foreign)} container(s) not made by this compose file", foreign,
                     fix="remove them (docker rm NAME) and docker compose --profile models create")
    stopped = [f"{n} is {d.containers.get(n)}" for n in running if d.containers.get(n) != "running"]
    if stopped:
        return Check("containers", "warn", f"{len(created)} created; not running: "
                     + ", ".join(n for n in running if d.containers.get(n) != "running"), stopped,
                     fix="docker compose up -d")
    return Check("containers", "ok", f"{len(created)} created, {', '.join(running)} running")


@dataclass
class Need:
    """Files one server needs, inside one Docker volume of a compose service."""

    server: str
    service: str
    container_path: str
    what: str            # dir (a model directory) | file | hf (a Hugging Face cache repo)


def _resolve(compose: ComposeFile, d: DockerFacts, need: Need) -> tuple[Path | None, str]:
    found = compose.locate(need.service, need.container_path)
    if found is None:
        return None, f"{need.server}: no volume of {need.service} holds {need.container_path}"
    mount, rest = found
    if mount.kind == "bind":
        return Path(mount.source) / rest, ""
    point = d.volumes.get(mount.source)
    if point is None:
        return None, f"{need.server}: volume {mount.source} does not exist (docker volume create {mount.source})"
    if not point:
        return None, f"{need.server}: Docker did not say where volume {mount.source} lives"
    return Path(point) / rest, ""


def _has_weights(path: Path) -> bool:
    return any(path.glob("*.safetensors")) or any(path.glob("*/*.safetensors"))


def weights(compose: ComposeFile, d: DockerFacts, needs: list[Need]) -> Check:
    if not d.reachable:
        return _no_docker("weights")
    problems, unreadable, ok = [], [], []
    for need in needs:
        path, error = _resolve(compose, d, need)
        if path is None:
            problems.append(error)
            continue
        try:
            if need.what == "file":
                good = path.is_file() and path.stat().st_size > 0
            elif need.what == "hf":
                snaps = sorted((path / "snapshots").glob("*")) if (path / "snapshots").is_dir() else []
                good = any(_has_weights(s) for s in snaps)
            else:
                good = path.is_dir() and (path / "config.json").is_file() and _has_weights(path)
        except PermissionError:
            unreadable.append(f"{need.server}: cannot read {path}")
            continue
        if good:
            ok.append(need.server)
        else:
            problems.append(f"{need.server}: {need.container_path} ({path}) is missing or has no weights")
    problems = list(dict.fromkeys(problems))  # one missing volume, several needs: one line
    if problems:
        return Check("weights", "fail", f"{len(problems)} problem(s) with {len(needs)} needed", problems + unreadable,
                     fix="docker compose --profile setup run --rm fetch-models")
    if unreadable:
        return Check("weights", "warn", "volumes not readable by this user", unreadable, fix="sudo sovhub doctor")
    return Check("weights", "ok", f"{len(needs)} present: " + ", ".join(dict.fromkeys(ok)))


def nvfp4_config(compose: ComposeFile, d: DockerFacts, need: Need) -> Check:
    if not d.reachable:
        return _no_docker("nvfp4")
    path, error = _resolve(compose, d, need)
    if path is None:
        return Check("nvfp4", "fail", error, fix="docker compose --profile setup run --rm fetch-models")
    try:
        good, why = nvfp4.check(path)
    except PermissionError:
        return Check("nvfp4", "warn", f"cannot read {path}", fix="sudo sovhub doctor")
    if good:
        return Check("nvfp4", "ok", f"{need.container_path}: {why}")
    return Check("nvfp4", "fail", f"{need.container_path}/config.json does not declare NVFP4", [why],
                 fix="docker compose --profile setup run --rm fetch-models (merges hf_quant_config.json)")


def ports(wanted: Mapping[int, str], in_use: Mapping[int, bool], owners: Mapping[str, str | None],
          listeners: Mapping[int, str]) -> Check:
    """Each port free, or held by the sovhub container that should hold it."""
    taken, owned = [], []
    for port, container in sorted(wanted.items()):
        if not in_use.get(port):
            continue
        if owners.get(container) == "running":
            owned.append(f"{port} {container}")
            continue
        who = listeners.get(port) or "another process"
        note = " (the old sovereign-mcp? sovhub serves the same tools: stop it)" if port == 8002 else ""
        taken.append(f"{port} (for {container}) is taken by {who}{note}")
    if taken:
        return Check("ports", "fail", f"{len(taken)} port(s) taken by something else", taken,
                     fix="stop the other server (docker ps; ss -ltnp) or change the port in the config and compose")
    held = f" ({', '.join(owned)})" if owned else ""
    return Check("ports", "ok", f"{len(wanted)} ports free or owned by sovhub{held}")


def secrets(files: Mapping[str, Path | None], required: set[str]) -> Check:
    """Every secret file present and readable only by its owner (mode 600 or stricter)."""
    problems, empty = [], []
    for name, path in sorted(files.items()):
        if path is None:
            problems.append(f"{name}: no file in the compose file's secrets")
            continue
        try:
            st = path.stat()
        except FileNotFoundError:
            problems.append(f"{name}: {path} is missing (compose refuses to start without it)")
            continue
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            problems.append(f"{name}: {path} is mode {stat.S_IMODE(st.st_mode):03o}, readable by others")
        elif st.st_size == 0:
            (problems if name in required else empty).append(f"{name}: empty"
                                                               + (" but the config needs it" if name in required
                                                                  else " (feature off)"))
    if problems:
        return Check("secrets", "fail", f"{len(problems)} of {len(files)} secret files need attention",
                     problems + empty, fix="create them as in compose/README.md, then chmod 600 compose/secrets/*")
    return Check("secrets", "ok", f"{len(files)} files, owner-only" + (f"; {len(empty)} empty (feature off)"
                                                                        if empty else ""))


def docker_endpoint(e: EndpointFacts | None, proxy_state: str | None = "running") -> Check:
    """The hub's Docker API must be the filtering proxy: reachable, refusing the rest, allowing the hub.

    `proxy_state` is the proxy container's status: before the first `up` it is not running yet,
    which is a warning, not a fault."""
    if e is None:
        return Check("docker_proxy", "warn", "the hub uses the raw Docker socket (root on the host)",
                     fix="set the residents' driver.docker_host and skills.ops.docker_url to the docker-proxy "
                         "socket (unix:///run/sovhub-docker/docker.sock in config/hub.gb10.yaml)")
    if (not e.reachable or e.ping != 200) and proxy_state != "running":
        return Check("docker_proxy", "warn", f"the socket proxy is {proxy_state or 'not created'}: "
                     "its socket appears with `up`", fix="docker compose up -d (then run the doctor again)")
    if not e.reachable or e.ping != 200:
        return Check("docker_proxy", "fail", f"{e.url} does not answer", [e.error or f"/_ping: {e.ping}"],
                     fix="docker compose up -d docker-proxy (and check its log: docker logs sovhub-docker-proxy)")
    if e.needed_probe == 403:
        return Check("docker_proxy", "fail", f"{e.url} refuses what the hub needs (inspect a sovhub container)",
                     fix="compare docker-proxy's -allow* flags in compose.yaml with the container names")
    if e.forbidden_probe == 200:
        return Check("docker_proxy", "warn", f"{e.url} is the unfiltered Docker API (root on the host)",
                     ["GET /images/json answered 200: nothing filters requests"],
                     fix="point the hub at the docker-proxy socket, never at /var/run/docker.sock")
    return Check("docker_proxy", "ok", f"{e.url} answers and filters (images list: {e.forbidden_probe})")


def _ssh_remote(url: str) -> bool:
    return url.startswith("ssh://") or ("@" in url.split(":", 1)[0] and "://" not in url)


def blog(path: Path | None, push: bool, remotes: list[str] | None, has_modules: bool,
         deploy_key: Path | None = None) -> Check:
    if path is None:
        return Check("blog", "ok", "no blog configured (skills.content.blog_dir)")
    if not path.is_dir():
        return Check("blog", "fail", f"{path} does not exist",
                     fix=f"git clone <your Astro site> {path}, then npm ci in the hub container (README.md)")
    if not (path / ".git").exists():
        return Check("blog", "fail" if push else "warn", f"{path} is not a git repository",
                     fix=f"git clone <your Astro site> {path} (or git init there)")
    details = []
    if push and not remotes:
        return Check("blog", "fail", f"{path} has no git remote but skills.content.git_push is on",
                     fix=f"git -C {path} remote add origin <url>, or set skills.content.git_push: false")
    if push and remotes and _ssh_remote(remotes[0]) and deploy_key is not None and (
            not deploy_key.is_file() or deploy_key.stat().st_size == 0):
        details.append(f"pushes to {remotes[0]} over SSH but the deploy key {deploy_key} is empty or missing")
    if not (path / "package.json").is_file():
        details.append("no package.json: not an Astro site?")
    elif not has_modules:
        details.append("no node_modules: the build cannot run")
    if details:
        fix = "docker compose run --rm --no-deps hub sh -c 'cd /blog && npm ci'"
        if any("deploy key" in d for d in details):
            fix = "ssh-keygen -t ed25519 -N '' -f compose/secrets/blog_deploy_key (add the .pub as a deploy key)"
        return Check("blog", "warn", f"{path} is a git repository", details, fix=fix)
    return Check("blog", "ok", f"{path}: git" + (f", remote {remotes[0]}" if remotes else "") + ", node_modules")


def sglang_flags(config: HubConfig, compose: ComposeFile, service: str) -> Check:
    """The compose SGLang command against diagnose_sglang's known-good GB10 flags (one list, no drift)."""
    from skills.ops import flags  # the same rules the diagnose skill applies to /server_info

    svc = compose.service(service)
    args = server_args(compose.command(service))
    env = {str(k): str(v) for k, v in (svc.get("environment") or {}).items()}
    findings = flags.check(args, config.skills.ops.gb10_flags, env)
    problems = [f"{f.title} (fix: {f.fix})" for f in findings]
    timeout = env.get("SGLANG_HEALTH_CHECK_TIMEOUT")
    if timeout and float(timeout) >= config.skills.ops.health_timeout_s:
        problems.append(f"skills.ops.health_timeout_s {config.skills.ops.health_timeout_s:g} s is not longer than "
                        f"the server's SGLANG_HEALTH_CHECK_TIMEOUT {timeout} s: a slow /health reads as a hang")
    if problems:
        return Check("sglang_flags", "fail", f"{len(problems)} difference(s) from the known-good GB10 flags",
                     problems, fix="make compose.yaml and skills.ops agree")
    return Check("sglang_flags", "ok", f"{len(config.skills.ops.gb10_flags)} known-good flags hold")


def config_check(error: str, path: Any) -> Check:
    if error:
        return Check("config", "fail", f"{path} does not load", error.splitlines()[:6],
                     fix=f"sovhub config check {path}")
    return Check("config", "ok", f"{path} loads")
