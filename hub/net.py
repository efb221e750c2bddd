"""Serving HTTP inside the hub's own event loop: binding, and uvicorn without its signal handlers.

The MCP bridge and the status page both bind here rather than in uvicorn, because uvicorn answers a
bind failure with sys.exit inside the hub's loop; binding first turns it into a clear HubError.
"""

from __future__ import annotations

import contextlib
import socket

import uvicorn

from hub.errors import HubError

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def host_name(host_header: str) -> str:
    """The host part of an HTTP Host header ("[::1]:8003" -> "::1"), lower-cased, for DNS-rebinding checks."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def bind_tcp(host: str, port: int, purpose: str) -> socket.socket:
    """A listening, non-blocking TCP socket; port 0 lets the kernel choose (tests, the demo)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say so, and without it
    # every small response waits out a delayed ACK (about 40 ms instead of 2).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise HubError(f"{purpose} cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


class QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: the hub owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield
