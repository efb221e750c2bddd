"""A private Docker engine for tests: own socket, data root and exec root; no bridge, no iptables.

Several engines may run on one machine at once (other test sessions), so nothing here touches a
shared path or the host network config. Containers use the host network: a server inside listens
on the host's 127.0.0.1, which is what the hub talks to in production too.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import docker

TEST_LABEL = "sovhub.test"
BASE_IMAGE = "sovhub-test-base:latest"
REPO_ROOT = Path(__file__).resolve().parents[2]


def busybox_rootfs_tar() -> bytes:
    """A tiny rootfs: static busybox as /bin/busybox and /bin/sh, plus the usual mount points."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).exists():
        raise RuntimeError("busybox (Debian package busybox-static) is required for the test base image")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "tmp", "etc", "proc", "sys", "dev", "root", "work"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        link = tarfile.TarInfo("bin/sh")
        link.type = tarfile.SYMTYPE
        link.linkname = "busybox"
        tar.addfile(link)
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    return buf.getvalue()


def host_python_mounts() -> dict[str, dict[str, str]]:
    """Read-only bind mounts that let a busybox container run this venv's Python and the repo."""
    paths = ["/usr", "/lib", sys.base_prefix, os.path.realpath(sys.base_prefix), sys.prefix,
             str(REPO_ROOT)]
    if Path("/lib64").exists():
        paths.append("/lib64")
    mounts: dict[str, dict[str, str]] = {}
    for p in paths:
        mounts.setdefault(p, {"bind": p, "mode": "ro"})
    return mounts


class DockerEngine:
    """A dockerd started as a child process; stopped by PID and its temp dir cleaned at the end."""

    def __init__(self, extra_args: list[str] | None = None) -> None:
        self.extra_args = list(extra_args or [])
        # Short path: containerd's socket lives under exec-root and unix socket paths are <108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="sovd-", dir="/tmp"))
        self.socket = self.root / "docker.sock"
        self.base_url = f"unix://{self.socket}"
        self.image = BASE_IMAGE
        self.proc: subprocess.Popen | None = None
        self.client: docker.DockerClient

    def log_tail(self, chars: int = 3000) -> str:
        log = self.root / "dockerd.log"
        return log.read_text(errors="replace")[-chars:] if log.exists() else "(no dockerd log)"

    def start(self, timeout: float = 30.0) -> None:
        dockerd = shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/sbin")
        if dockerd is None:
            raise RuntimeError(
                "dockerd not found: install Debian's docker.io (the README's test command does)")
        if os.geteuid() != 0:
            raise RuntimeError("the dockerd test fixture must run as root")
        out = open(self.root / "dockerd.log", "w")
        self.proc = subprocess.Popen(
            [dockerd, "--host", self.base_url, "--data-root", str(self.root / "data"),
             "--exec-root", str(self.root / "x"), "--pidfile", str(self.root / "dockerd.pid"),
             "--bridge=none", "--iptables=false", "--ip-masq=false", *self.extra_args],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        out.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.socket.exists():
                try:
                    self.client = docker.DockerClient(base_url=self.base_url, timeout=60)
                    self.client.ping()
                    break
                except Exception:
                    pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dockerd API not up after {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.1)
        self.client.api.import_image_from_data(busybox_rootfs_tar(), repository="sovhub-test-base",
                                               tag="latest")
        self.client.images.get(self.image)

    def run_python(self, name: str, args: list[str], *, env: dict[str, str] | None = None,
                   labels: dict[str, str] | None = None, detach: bool = True, **kw):
        """Run this venv's Python in a container (host network, tini as PID 1, repo as workdir)."""
        environment = {"PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1", "HOME": "/tmp"}
        environment.update(env or {})
        all_labels = {TEST_LABEL: "1", **(labels or {})}
        volumes = host_python_mounts()
        volumes.update(kw.pop("volumes", {}) or {})
        return self.client.containers.run(
            self.image, [sys.executable, *args], name=name, environment=environment,
            labels=all_labels, volumes=volumes, network_mode="host", init=True,
            working_dir=str(REPO_ROOT), detach=detach, **kw,
        )

    def remove_test_containers(self, since: set[str] | None = None) -> None:
        """Force-remove containers labelled as test containers (optionally only ones not in `since`)."""
        for c in self.client.containers.list(all=True, filters={"label": f"{TEST_LABEL}=1"}):
            if since is not None and c.id in since:
                continue
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                c.remove(force=True)

    def stop(self) -> None:
        """Stop dockerd by PID (TERM, then KILL), unmount leftovers and delete the temp dir."""
        with contextlib.suppress(Exception):
            self.remove_test_containers()
        with contextlib.suppress(Exception):
            self.client.close()
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._unmount_leftovers()
        shutil.rmtree(self.root, ignore_errors=True)

    def _unmount_leftovers(self) -> None:
        prefix = str(self.root) + "/"
        try:
            lines = Path("/proc/self/mounts").read_text().splitlines()
        except OSError:
            return
        targets = [ln.split()[1].encode().decode("unicode_escape") for ln in lines]
        for target in sorted((t for t in targets if t.startswith(prefix)), key=len, reverse=True):
            subprocess.run(["umount", "-l", target], capture_output=True)
