"""A loopback HTTP proxy that adds `Authorization: Bearer <token>` to every request it forwards.

The official MCP conformance CLI cannot send a header, but the hub's MCP server is tested the way it
runs: with tokens. Everything else passes through — method, path, body, `Origin` and any foreign
`Host` (the DNS-rebinding scenario depends on them; a loopback `Host`, the proxy's own, becomes the
server's), status, headers and streamed SSE bodies.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from hub.sim.serve import serve_app

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-authorization", "content-length"}


def bearer_proxy_app(upstream: str, token: str) -> Starlette:
    client = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(120, connect=10))

    async def forward(request: Request) -> StreamingResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        headers["authorization"] = f"Bearer {token}"
        if headers.get("host", "").split(":")[0] in ("127.0.0.1", "localhost"):
            headers["host"] = client.base_url.netloc.decode()  # this proxy's own name -> the server's
        upstream_request = client.build_request(request.method, request.url.path, params=request.url.query or None,
                                                headers=headers, content=await request.body())
        response = await client.send(upstream_request, stream=True)
        out = {k: v for k, v in response.headers.items() if k.lower() not in HOP}
        return StreamingResponse(response.aiter_raw(), status_code=response.status_code, headers=out,
                                 background=BackgroundTask(response.aclose))

    methods = ["GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "HEAD"]
    app = Starlette(routes=[Route("/{path:path}", forward, methods=methods)])
    app.state.client = client
    return app


@contextlib.asynccontextmanager
async def bearer_proxy(upstream_url: str, token: str) -> AsyncIterator[str]:
    """Serve the proxy on an ephemeral loopback port; yields the URL equivalent to `upstream_url`."""
    parsed = httpx.URL(upstream_url)
    app = bearer_proxy_app(f"{parsed.scheme}://{parsed.netloc.decode()}", token)
    try:
        async with serve_app(app) as base:
            yield base.rstrip("/") + parsed.path
    finally:
        await app.state.client.aclose()
