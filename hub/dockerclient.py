"""The one way the hub gets a Docker client: the configured URL, else `$DOCKER_HOST` / the default socket.

The Docker SDK is imported here, when a client is first wanted, so a configuration that drives no
container never pays for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import docker


def connect(url: str | None, timeout: float = 30) -> docker.DockerClient:
    """A client for `url` (e.g. the socket proxy's tcp://…), else from the environment; may raise
    `docker.errors.DockerException` — each caller words "unreachable" for its own reader."""
    import docker

    if url:
        return docker.DockerClient(base_url=url, timeout=int(timeout))
    return docker.from_env(timeout=int(timeout))
