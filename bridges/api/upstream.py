"""A lean HTTP/1.1 client for the one hot hop: the gateway to the local model server (SGLang).

Why not httpx here: a streamed turn is dozens of small SSE events, and each went through httpx,
httpcore, anyio and h11 (object churn and state machines per event) before the gateway saw its
bytes. This client is an `asyncio.Protocol`: `data_received` appends to a buffer and wakes the
one reader; the body is framed by `Content-Length`, chunked transfer coding (`ChunkedDecoder`,
pure) or the connection's end. Connections are kept alive per (host, port) and reused only when a
body was read to its end on a connection the server did not close, for `IDLE_S` at most; anything
else closes it. A reused connection that ends before any byte of the response (the server closed
it as the request went out) is replaced and the request sent again, once.
It speaks only what the gateway sends: one POST with a body, plain HTTP (a model server on the
box or the LAN). Errors are `UpstreamError` (an `OSError`-like connection failure or a malformed
response), which the gateway answers as 502 like any failure of the local model.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from hub.errors import HubError

MAX_HEAD = 64 * 1024
HEX = b"0123456789abcdefABCDEF"
IDLE_KEPT = 16  # idle connections kept per server
IDLE_S = 2.0  # an idle connection older than this is not reused: uvicorn (SGLang's server) closes at 5 s


class UpstreamError(HubError):
    """The local model server could not be reached or answered something that is not HTTP/1.1."""


class ChunkedDecoder:
    """Chunked transfer coding -> the body's bytes, fed in pieces cut anywhere (RFC 9112 §7.1)."""

    __slots__ = ("_buf", "_left", "_state", "done")

    def __init__(self) -> None:
        self._buf = b""
        self._left = 0  # bytes of chunk data still to come
        self._state = "size"  # size | data | crlf | trailer
        self.done = False

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        buf = self._buf + data if self._buf else data
        pos = 0
        while not self.done:
            if self._state == "data":
                take = min(self._left, len(buf) - pos)
                if take <= 0:
                    break
                out.append(buf[pos:pos + take])
                pos += take
                self._left -= take
                if self._left:
                    break
                self._state = "crlf"
            elif self._state == "crlf":
                if len(buf) - pos < 2:
                    break
                if buf[pos:pos + 2] != b"\r\n":
                    raise UpstreamError("malformed chunked body (no CRLF after a chunk)")
                pos += 2
                self._state = "size"
            else:
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    if len(buf) - pos > 1024:
                        raise UpstreamError("malformed chunked body (chunk size line too long)")
                    break
                line = buf[pos:end]
                pos = end + 2
                if self._state == "trailer":
                    if not line:
                        self.done = True
                    continue
                size = line.split(b";", 1)[0].strip()
                if not size or size.strip(HEX) or len(size) > 16:
                    raise UpstreamError(f"malformed chunked body (chunk size {size[:20]!r})")
                self._left = int(size, 16)
                self._state = "data" if self._left else "trailer"
        self._buf = buf[pos:]
        return out


class _Stale(Exception):
    """A reused connection ended before any byte of the response: the request is sent again, once."""


class _Conn(asyncio.Protocol):
    """One connection: bytes received wait in `buffer` until the reader takes them."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future | None = None
        self.idle_since = 0.0
        self.reused = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc) -> None:
        self.eof = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def read(self) -> bytes:
        """What has arrived (waiting for something); b"" at the end of the connection."""
        while not self.buffer:
            if self.eof:
                return b""
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    @property
    def reusable(self) -> bool:
        return not self.eof and not self.buffer and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Response:
    """A response whose head was read; its body is read with `aread()` or `aiter_raw()`, once."""

    def __init__(self, client: Upstream, key: tuple[str, int], conn: _Conn, status: int,
                 headers: dict[str, str], rest: bytes) -> None:
        self._client, self._key, self._conn = client, key, conn
        self.status_code = status
        self.headers = headers
        self._rest = rest
        self._finished = False
        te = headers.get("transfer-encoding", "").lower()
        self._chunked = "chunked" in te
        length = headers.get("content-length")
        self._length = None if self._chunked or length is None else int(length)
        if status in (204, 304) or status < 200:
            self._chunked, self._length = False, 0  # no body, whatever the headers say
        self._keep = headers.get("connection", "").lower() != "close" and (self._chunked or self._length is not None)

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (de-chunked)."""
        conn = self._conn
        decoder = ChunkedDecoder() if self._chunked else None
        left = self._length
        data, self._rest = self._rest, b""
        while True:
            if data:
                if decoder is not None:
                    pieces = decoder.feed(data)
                    for piece in pieces:
                        yield piece
                    if decoder.done:
                        break
                else:
                    if left is not None:
                        data = data[:left]
                        left -= len(data)
                    yield data
                    if left == 0:
                        break
            elif left == 0:
                break
            data = await conn.read()
            if not data:
                if decoder is not None or left:
                    raise UpstreamError("the local model server closed the connection mid-answer")
                break  # a body delimited by the connection's end
        self._finished = True

    async def aread(self) -> bytes:
        return b"".join([piece async for piece in self.aiter_raw()])

    def release(self) -> None:
        """Back to the pool when the body was read to its end on a live connection; else closed."""
        if self._finished and self._keep and self._conn.reusable:
            self._conn.idle_since = time.monotonic()
            self._client._idle.setdefault(self._key, []).append(self._conn)
            del self._client._idle[self._key][:-IDLE_KEPT]
        else:
            self._conn.close()


class Upstream:
    """`async with upstream.post(url, body, headers) as response:` with pooled keep-alive connections."""

    def __init__(self, connect_timeout: float = 10.0) -> None:
        self.connect_timeout = connect_timeout
        self._idle: dict[tuple[str, int], list[_Conn]] = {}
        self._closed = False

    async def _connect(self, key: tuple[str, int], fresh: bool = False) -> _Conn:
        idle = None if fresh else self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.reusable and now - conn.idle_since < IDLE_S:
                conn.reused = True
                return conn
            conn.close()
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(loop.create_connection(_Conn, key[0], key[1]), self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(f"cannot connect to {key[0]}:{key[1]} ({type(exc).__name__})") from None
        return conn

    @contextlib.asynccontextmanager
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> AsyncIterator[Response]:
        if self._closed:
            raise UpstreamError("the gateway is closing")
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise UpstreamError(f"only http:// URLs are served by the lean client, not {url!r}")
        key = (parts.hostname, parts.port or 80)
        host = parts.netloc
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = [f"POST {target} HTTP/1.1", f"host: {host}", f"content-length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        conn = await self._connect(key)
        response = None
        try:
            try:
                response = await self._send(key, conn, request)
            except _Stale:  # the server closed a kept-alive connection as it was reused: nothing was read
                conn.close()
                conn = await self._connect(key, fresh=True)
                response = await self._send(key, conn, request)
            yield response
        finally:
            if response is None:
                conn.close()
            else:
                response.release()

    async def _send(self, key: tuple[str, int], conn: _Conn, request: bytes) -> Response:
        assert conn.transport is not None
        conn.transport.write(request)
        return await self._head(key, conn)

    async def _head(self, key: tuple[str, int], conn: _Conn) -> Response:
        data = b""
        while True:
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(data) > MAX_HEAD:
                raise UpstreamError("the local model server's response head is too long")
            more = await conn.read()
            if not more and conn.reused and not data:
                conn.reused = False
                raise _Stale()
            if not more:
                raise UpstreamError(f"the connection to {key[0]}:{key[1]} closed before a response"
                                    + (f" ({type(conn.error).__name__})" if conn.error else ""))
            data += more
        lines = data[:end].decode("latin-1").split("\r\n")
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/1.") or not status_line[1].isdigit():
            raise UpstreamError(f"not an HTTP/1.1 response: {lines[0][:60]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        return Response(self, key, conn, int(status_line[1]), headers, data[end + 4:])

    async def aclose(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
