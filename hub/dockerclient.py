"""The one way the hub gets a Docker client: the configured URL, else `$DOCKER_HOST` / the default socket.

An engine may be local (unix://), another machine's over SSH (ssh://user@host: the Docker SDK runs
`ssh ... docker system dial-stdio`, so the remote needs only sshd and the docker CLI), or over
tcp:// with TLS client certificates read from files. The Docker SDK is imported here, when a
client is first wanted, so a configuration that drives no container never pays for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import docker


@dataclass(frozen=True)
class TlsFiles:
    """Client certificates for a tcp:// engine (`dockerd --tlsverify`)."""

    ca_cert: str
    client_cert: str
    client_key: str
    verify: bool = True


def connect(url: str | None, timeout: float = 30, *, tls: TlsFiles | None = None,
            use_ssh_client: bool = True) -> docker.DockerClient:
    """A client for `url` (e.g. the socket proxy's tcp://…), else from the environment; may raise
    `docker.errors.DockerException` — each caller words "unreachable" for its own reader."""
    import docker

    if url:
        kw: dict = {}
        if tls is not None:
            kw["tls"] = docker.tls.TLSConfig(client_cert=(tls.client_cert, tls.client_key), ca_cert=tls.ca_cert,
                                             verify=tls.ca_cert if tls.verify else False)
        if url.startswith("ssh://"):
            kw["use_ssh_client"] = use_ssh_client
        return docker.DockerClient(base_url=url, timeout=int(timeout), **kw)
    return docker.from_env(timeout=int(timeout))
