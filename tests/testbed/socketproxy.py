"""A Docker socket proxy for tests that enforces compose.yaml's docker-proxy allowlist.

wollomatic/socket-proxy itself cannot be built here (it needs Go 1.26; no registry to pull its
image), so this applies the same documented rules to the same flags: for each HTTP method, the
`-allowMETHOD=regex` flags of the compose service, anchored with ^...$ and matched against the
request path; a method with no rule gets 405, a path no rule matches gets 403, anything else is
forwarded to the real dockerd's socket. One request per connection (`Connection: close`), which
the Docker SDK handles; streamed answers (logs, events) are piped until the engine closes.
"""

from __future__ import annotations

import contextlib
import re
import socket
import socketserver
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml


def compose_rules(compose_file: Path, service: str = "docker-proxy") -> dict[str, list[re.Pattern]]:
    command = yaml.safe_load(compose_file.read_text())["services"][service]["command"]
    rules: dict[str, list[re.Pattern]] = {}
    for arg in command:
        m = re.match(r"^-allow([A-Z]+)=(.+)$", str(arg))
        if m:
            rules.setdefault(m.group(1), []).append(re.compile(f"^{m.group(2)}$"))
    return rules


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            head += chunk
        head, _, body = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = [ln for ln in lines[1:] if not ln.lower().startswith("connection:")]
        length = next((int(ln.split(":", 1)[1]) for ln in headers if ln.lower().startswith("content-length:")), 0)
        while len(body) < length:
            chunk = self.request.recv(65536)
            if not chunk:
                break
            body += chunk
        path = unquote(urlsplit(target).path)
        allowed = self.server.rules.get(method)
        if allowed is None:
            return self._refuse(405, "method not allowed")
        if not any(r.match(path) for r in allowed):
            return self._refuse(403, "path not allowed")
        self.server.seen.append((method, path))
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(self.server.upstream)
            request = "\r\n".join([f"{method} {target} {version}", *headers, "Connection: close", "", ""])
            upstream.sendall(request.encode("latin-1") + body)
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                self.request.sendall(data)
        finally:
            upstream.close()

    def _refuse(self, status: int, reason: str) -> None:
        self.server.refused.append(reason)
        text = reason.encode()
        self.request.sendall(f"HTTP/1.1 {status} {reason.title()}\r\nContent-Type: text/plain\r\n"
                             f"Content-Length: {len(text)}\r\nConnection: close\r\n\r\n".encode() + text)


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    rules: dict[str, list[re.Pattern]]
    upstream: str
    seen: list[tuple[str, str]]
    refused: list[str]


class SocketProxy:
    def __init__(self, socket_path: Path, upstream: str, rules: dict[str, list[re.Pattern]]) -> None:
        self.path = Path(socket_path)
        self.url = f"unix://{self.path}"
        self._server = _Server(str(self.path), _Handler)
        self._server.rules, self._server.upstream = rules, upstream
        self._server.seen, self._server.refused = [], []
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def seen(self) -> list[tuple[str, str]]:
        return self._server.seen

    def __enter__(self) -> SocketProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        with contextlib.suppress(OSError):
            self.path.unlink()
