"""The docker driver: an existing container, found by name or by its compose service label.

The hub never creates model containers (compose does); it starts and stops them. The SDK is
synchronous, so every call runs in a worker thread. Every call names the container by its name,
never by id: the Docker socket proxy in front of the engine allows only `sovhub-*` paths.

Ownership: the hub adopts only a container labelled `sovhub.resident=<resident name>` (compose
sets it). Another container that merely has the configured name — someone's own service — is
never started, waited on or stopped: every call refuses it with a message saying what to fix.
"""

from __future__ import annotations

import asyncio

from hub.dockerclient import TlsFiles, connect
from hub.errors import os_reason
from hub.gpu.drivers.base import DriverError
from hub.lazy import lazy_import

docker = lazy_import("docker")  # the Docker SDK (and requests) load when a container is driven
requests = lazy_import("requests")

COMPOSE_SERVICE = "com.docker.compose.service"
OWNER_LABEL = "sovhub.resident"  # value: the resident's name


class ContainerMissing(DriverError):
    pass


class ForeignContainer(DriverError):
    """A container with the configured name that sovhub did not create: it is left alone."""


class DockerDriver:
    def __init__(self, name: str, *, container: str | None = None, compose_service: str | None = None,
                 docker_host: str | None = None, tls: TlsFiles | None = None, use_ssh_client: bool = True) -> None:
        self.name = name
        self.tls = tls
        self.use_ssh_client = use_ssh_client
        self.container_name = container or (None if compose_service else name)
        self.compose_service = compose_service
        self.docker_host = docker_host
        self._client: docker.DockerClient | None = None

    def _docker(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = connect(self.docker_host, timeout=60, tls=self.tls,
                                       use_ssh_client=self.use_ssh_client)
            except docker.errors.DockerException as exc:
                raise self._unreachable(exc) from exc
        return self._client

    def _find(self):
        client = self._docker()
        if self.container_name:
            try:
                return self._owned(client.containers.get(self.container_name))
            except docker.errors.NotFound:
                pass
        if self.compose_service:
            found = client.containers.list(all=True, filters={"label": f"{COMPOSE_SERVICE}={self.compose_service}"})
            if found:
                return self._owned(found[0])
        what = " or ".join(x for x in (self.container_name and f"named {self.container_name!r}",
                                       self.compose_service and f"of compose service {self.compose_service!r}") if x)
        raise ContainerMissing(f"{self.name}: no container {what}; create it first "
                          f"(docker compose create {self.compose_service or self.container_name})")

    def _owned(self, container):
        owner = (container.labels or {}).get(OWNER_LABEL)
        if owner == self.name:
            return container
        whose = f"labelled {OWNER_LABEL}={owner}" if owner else f"without the label {OWNER_LABEL}={self.name}"
        raise ForeignContainer(
            f"{self.name}: container {container.name!r} ({container.status}) was not created for this resident "
            f"({whose}); sovhub will not start, wait on or stop it. Label the resident's container "
            f"{OWNER_LABEL}={self.name} (compose `labels:`), or point residents.{self.name}.driver.container "
            "at the right one")

    async def _call(self, fn):
        try:
            return await asyncio.to_thread(fn)
        except docker.errors.APIError as exc:
            raise DriverError(f"{self.name}: docker: {exc.explanation or exc}") from exc
        except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: BaseException) -> DriverError:
        self._client = None  # reconnect on the next call: Docker may be back
        return DriverError(f"{self.name}: Docker is not reachable at {self.docker_host or '$DOCKER_HOST'}: "
                           f"{os_reason(exc)}; is the Docker daemon (or its socket proxy) running?")

    async def start(self) -> None:
        await self._call(lambda: self._docker().api.start(self._find().name))

    async def stop(self, timeout: float) -> None:
        await self._call(lambda: self._docker().api.stop(self._find().name, timeout=max(1, int(timeout))))

    async def restart(self, timeout: float) -> None:
        await self._call(lambda: self._docker().api.restart(self._find().name, timeout=max(1, int(timeout))))

    async def is_running(self) -> bool:
        def check() -> bool:
            return self._find().status == "running"  # _find() inspects afresh
        try:
            return await self._call(check)
        except ContainerMissing:
            return False  # (an unreachable Docker raises: that says nothing about the server)

    async def output_since(self, since: float) -> str:
        data = await self._call(lambda: self._docker().api.logs(self._find().name, since=since, stdout=True,
                                                                 stderr=True))
        return data.decode(errors="replace")

    async def tail(self, lines: int = 30) -> str:
        try:
            data = await self._call(lambda: self._docker().api.logs(self._find().name, tail=lines, stdout=True,
                                                                     stderr=True))
        except DriverError as exc:
            return str(exc)
        return data.decode(errors="replace")
