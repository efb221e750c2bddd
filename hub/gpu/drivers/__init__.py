"""Drivers: how a resident's server is started and stopped (docker, process, http_release)."""

from __future__ import annotations

from pathlib import Path

from hub.dockerclient import TlsFiles
from hub.gpu.drivers.base import Driver, DriverError
from hub.gpu.drivers.docker import DockerDriver
from hub.gpu.drivers.http_release import HttpReleaseDriver
from hub.gpu.drivers.process import ProcessDriver

__all__ = ["DockerDriver", "Driver", "DriverError", "HttpReleaseDriver", "ProcessDriver", "make_driver"]


def make_driver(name: str, resident, state_dir: Path) -> Driver:
    """Build the driver a resident's config asks for."""
    d = resident.driver
    if d.type == "docker":
        tls = TlsFiles(d.tls.ca_cert, d.tls.client_cert, d.tls.client_key, d.tls.verify) if d.tls else None
        return DockerDriver(name, container=d.container, compose_service=d.compose_service,
                            docker_host=d.docker_host, tls=tls, use_ssh_client=d.use_ssh_client)
    if d.type == "process":
        return ProcessDriver(name, d.command, state_dir=state_dir, cwd=d.cwd, env=d.env,
                             log_dir=Path(d.log_dir) if d.log_dir else None,
                             log_max_bytes=int(d.log_max_mb * (1 << 20)), log_keep=d.log_keep)
    return HttpReleaseDriver(name, resident.base_url, d.release, timeout=resident.start_timeout_s)
