"""Docker access for the ops skills (blocking SDK calls: callers run them in a thread).

The client comes from `skills.ops.docker_url` when set (tests point it at their own dockerd),
else from the environment (`DOCKER_HOST` or the default socket).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.dockerclient import connect
from hub.errors import BackendDown, os_reason
from hub.lazy import lazy_import

docker = lazy_import("docker")  # the Docker SDK loads when a container is driven


def unreachable(docker_url: str | None, exc: BaseException) -> BackendDown:
    return BackendDown(f"Docker is not reachable at {docker_url or '$DOCKER_HOST'}: {os_reason(exc)}; "
                       "is the Docker daemon (or its socket proxy) running?")


def client(docker_url: str | None, timeout: float = 30) -> docker.DockerClient:
    try:
        return connect(docker_url, timeout)
    except docker.errors.DockerException as exc:
        raise unreachable(docker_url, exc) from None



@dataclass
class ContainerInfo:
    name: str
    found: bool
    status: str = "missing"  # created | running | restarting | exited | paused | dead | missing
    exit_code: int | None = None
    oom_killed: bool = False
    error: str = ""
    started_at: str = ""
    finished_at: str = ""
    restart_count: int = 0
    env: dict[str, str] = field(default_factory=dict)
    log_lines: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "found": self.found, "status": self.status, "exit_code": self.exit_code,
                "oom_killed": self.oom_killed, "error": self.error, "started_at": self.started_at,
                "finished_at": self.finished_at, "restart_count": self.restart_count}


def _find(dc: docker.DockerClient, name: str):
    """A container by name or id, else by compose service name (compose names it project-service-1)."""
    try:
        return dc.containers.get(name)
    except docker.errors.NotFound:
        pass
    matches = dc.containers.list(all=True, filters={"label": f"com.docker.compose.service={name}"})
    return matches[0] if matches else None


def inspect(docker_url: str | None, name: str, tail: int) -> ContainerInfo:
    """State, environment and the last `tail` log lines of a container (found=False if absent)."""
    dc = client(docker_url)
    try:
        c = _find(dc, name)
        if c is None:
            return ContainerInfo(name=name, found=False)
        state = c.attrs.get("State", {})
        env = {}
        for item in (c.attrs.get("Config", {}) or {}).get("Env") or []:
            key, _, value = item.partition("=")
            env[key] = value
        raw = dc.api.logs(c.name, tail=tail, stdout=True, stderr=True)  # by name: the socket proxy allows it
        lines = raw.decode("utf-8", errors="replace").splitlines()
        return ContainerInfo(
            name=name, found=True, status=state.get("Status", "unknown"), exit_code=state.get("ExitCode"),
            oom_killed=bool(state.get("OOMKilled")), error=state.get("Error") or "",
            started_at=state.get("StartedAt", ""), finished_at=state.get("FinishedAt", ""),
            restart_count=int(c.attrs.get("RestartCount") or 0), env=env, log_lines=lines)
    except OSError as exc:  # requests' ConnectionError is an OSError: Docker went away mid-call
        raise unreachable(docker_url, exc) from None
    finally:
        with contextlib.suppress(Exception):
            dc.close()


def container_id(docker_url: str | None, name: str) -> str:
    dc = client(docker_url)
    try:
        c = _find(dc, name)
        if c is None:
            raise BackendDown(f"no container named {name!r}")
        return c.id
    except OSError as exc:  # requests' ConnectionError is an OSError: Docker went away mid-call
        raise unreachable(docker_url, exc) from None
    finally:
        with contextlib.suppress(Exception):
            dc.close()


def restart(docker_url: str | None, name: str, stop_timeout: float) -> str:
    """Restart (or start, when stopped) a container; returns its new StartedAt."""
    dc = client(docker_url, timeout=max(30, stop_timeout + 30))
    try:
        c = _find(dc, name)
        if c is None:
            raise BackendDown(f"no container named {name!r}")
        dc.api.restart(c.name, timeout=int(stop_timeout))  # by name, never id: the socket proxy filters on it
        return dc.api.inspect_container(c.name).get("State", {}).get("StartedAt", "")
    except OSError as exc:  # requests' ConnectionError is an OSError: Docker went away mid-call
        raise unreachable(docker_url, exc) from None
    finally:
        with contextlib.suppress(Exception):
            dc.close()


_CONTAINER_ID = re.compile(r"(?:/docker/containers/|/docker[-/]|/containers/)([0-9a-f]{64})")


def own_container_ids(proc: Path = Path("/proc/self")) -> set[str]:
    """Ids of the container this process runs in (empty when not in a container)."""
    ids: set[str] = set()
    for name in ("mountinfo", "cgroup"):
        try:
            text = (proc / name).read_text()
        except OSError:
            continue
        ids.update(_CONTAINER_ID.findall(text))
    return ids
