"""What the doctor looks at on the box: nvidia-smi, /proc/meminfo, the Docker API, ports, files.

Everything here does I/O and never raises: a failure becomes part of the fact (`error`), so one
missing piece (no GPU here, Docker down) never hides the other checks.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import docker
import docker.errors

from hub.dockerclient import connect


@dataclass
class GpuFacts:
    found: bool
    error: str = ""
    name: str = ""
    driver: str = ""
    cuda: str = ""


def nvidia_smi(path: str | None = None, timeout: float = 20) -> GpuFacts:
    """Driver and CUDA version from `nvidia-smi` (the header carries "CUDA Version: 13.0")."""
    exe = shutil.which("nvidia-smi", path=path)
    if exe is None:
        return GpuFacts(False, "nvidia-smi not found on PATH")
    try:
        out = subprocess.run([exe], capture_output=True, text=True, timeout=timeout)
        query = subprocess.run([exe, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return GpuFacts(False, f"nvidia-smi failed: {exc}")
    if out.returncode != 0:
        return GpuFacts(False, f"nvidia-smi exit {out.returncode}: {(out.stderr or out.stdout).strip()[:200]}")
    driver = re.search(r"Driver Version:\s*([\d.]+)", out.stdout)
    cuda = re.search(r"CUDA Version:\s*([\d.]+)", out.stdout)
    name = ""
    if query.returncode == 0 and query.stdout.strip():
        first = query.stdout.strip().splitlines()[0].split(",")
        name = first[0].strip()
        if not driver and len(first) > 1:
            return GpuFacts(True, name=name, driver=first[1].strip(), cuda=cuda.group(1) if cuda else "")
    return GpuFacts(True, name=name, driver=driver.group(1) if driver else "", cuda=cuda.group(1) if cuda else "")


def meminfo(path: str = "/proc/meminfo") -> tuple[dict[str, float], str]:
    """Fields of /proc/meminfo in GiB (the unit of the hub's memory figures), or an error."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        return {}, f"cannot read {path}: {exc}"
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+):\s+(\d+)\s*kB", line)
        if m:
            out[m.group(1)] = int(m.group(2)) / (1024 * 1024)
    return out, "" if "MemTotal" in out else f"no MemTotal in {path}"


@dataclass
class DockerFacts:
    url: str
    reachable: bool
    error: str = ""
    runtimes: list[str] = field(default_factory=list)
    images: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    volumes: dict[str, str | None] = field(default_factory=dict)     # name -> mountpoint (None: absent)
    containers: dict[str, str | None] = field(default_factory=dict)  # name -> status (None: absent)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)   # name -> container labels


def docker_facts(url: str | None, images: list[str], volumes: list[str], containers: list[str]) -> DockerFacts:
    """The Docker engine the stack runs on (the raw socket: the doctor runs as the operator)."""
    shown = url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = connect(url, timeout=30)
        info = client.info()
    except Exception as exc:  # docker.errors.DockerException, requests errors, OSError
        return DockerFacts(shown, False, f"{type(exc).__name__}: {exc}")
    facts = DockerFacts(shown, True, runtimes=sorted((info.get("Runtimes") or {}).keys()))
    try:
        for ref in images:
            try:
                img = client.images.get(ref)
                facts.images[ref] = {"id": img.id, "repo_digests": img.attrs.get("RepoDigests") or [],
                                     "labels": (img.attrs.get("Config") or {}).get("Labels") or {}}
            except docker.errors.ImageNotFound:
                facts.images[ref] = None
            except docker.errors.APIError as exc:
                facts.images[ref] = {"error": str(exc)}
        for name in volumes:
            try:
                facts.volumes[name] = client.volumes.get(name).attrs.get("Mountpoint") or ""
            except docker.errors.NotFound:
                facts.volumes[name] = None
            except docker.errors.APIError:
                facts.volumes[name] = ""  # exists for all we know; its files then read as missing
        for name in containers:
            try:
                found = client.containers.get(name)
                facts.containers[name] = found.status
                facts.labels[name] = dict(found.labels or {})
            except docker.errors.NotFound:
                facts.containers[name] = None
            except docker.errors.APIError as exc:
                facts.containers[name] = f"unknown ({exc.explanation or exc})"
    finally:
        with contextlib.suppress(Exception):
            client.close()
    return facts


@dataclass
class EndpointFacts:
    """The Docker API as the hub sees it (the socket proxy, or a raw socket)."""

    url: str
    reachable: bool
    error: str = ""
    ping: int | None = None
    forbidden_probe: int | None = None   # GET /images/json: a proxy refuses it, the raw API answers 200
    needed_probe: int | None = None      # GET /containers/<resident>/json: the hub needs it (200 or 404)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _get(url: str, path: str, timeout: float) -> int:
    parsed = urlparse(url)
    if parsed.scheme == "unix":
        conn: http.client.HTTPConnection = _UnixHTTPConnection(parsed.path, timeout)
    elif parsed.scheme in ("tcp", "http"):
        conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port or 2375, timeout=timeout)
    else:
        raise ValueError(f"unsupported Docker URL {url!r}")
    try:
        conn.request("GET", path, headers={"Host": "docker"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def endpoint_facts(url: str, container: str, api: str = "v1.41", timeout: float = 5) -> EndpointFacts:
    try:
        ping = _get(url, "/_ping", timeout)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return EndpointFacts(url, False, f"{type(exc).__name__}: {exc}")
    facts = EndpointFacts(url, True, ping=ping)
    with contextlib.suppress(OSError, http.client.HTTPException):
        facts.forbidden_probe = _get(url, f"/{api}/images/json", timeout)
    with contextlib.suppress(OSError, http.client.HTTPException):
        facts.needed_probe = _get(url, f"/{api}/containers/{container}/json", timeout)
    return facts


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something already listens on host:port (binding it fails with EADDRINUSE)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def listener(port: int) -> str:
    """Best effort: `pid 123 (python3)` of the process listening on the port, from /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(parts[9])
    if not inodes:
        return ""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        comm = Path(f"/proc/{pid}/comm").read_text().strip()
                        return f"pid {pid} ({comm})"
    return ""
