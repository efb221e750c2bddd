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


MIN_API = "1.24"  # the oldest Docker API the SDK speaks: good enough to ask the engine for its own


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
        if tls is None:
            return docker.DockerClient(base_url=url, timeout=int(timeout), **kw)
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's own CA file (`verify`
        # is merged from the environment on every request): the engine's CA must win, from the first
        # request on (the SDK asks the server's API version while it is constructed)
        probe = docker.DockerClient(base_url=url, timeout=int(timeout), version=MIN_API, **kw)
        probe.api.trust_env = False
        try:
            version = probe.api.version(api_version=False)["ApiVersion"]
        except Exception as exc:
            raise docker.errors.DockerException(f"Error while fetching server API version: {exc}") from exc
        finally:
            probe.close()
        client = docker.DockerClient(base_url=url, timeout=int(timeout), version=version, **kw)
        client.api.trust_env = False
        return client
    return docker.from_env(timeout=int(timeout))
