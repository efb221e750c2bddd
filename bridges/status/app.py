"""HTTP routes of the status page: `/`, `/api/status`, `/metrics`, `/healthz`, and one action.

Read-only unless `status.token` is set; then `POST /api/jobs/{id}/cancel` cancels a job when it
carries the token (`Authorization: Bearer <token>` or a `token` form field). Requests whose Host
header is not this machine get 421, so a web page cannot reach the hub by DNS rebinding.
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from bridges.status.page import render
from hub.context import Context
from hub.errors import UnknownJob

if TYPE_CHECKING:
    from bridges.status.service import StatusService

log = logging.getLogger(__name__)

METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _hostname(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def create_app(service: StatusService) -> Starlette:
    config = service.hub.config.status
    allowed = LOCAL_HOSTS | {config.host.lower()}
    open_bind = config.host in ("0.0.0.0", "::")

    def host_ok(request: Request) -> bool:
        return open_bind or _hostname(request.headers.get("host", "")) in allowed

    def misdirected() -> Response:
        return PlainTextResponse("misdirected request: unknown Host\n", status_code=421)

    async def page(request: Request) -> Response:
        if not host_ok(request):
            return misdirected()
        return HTMLResponse(render(await service.collect()))

    async def api_status(request: Request) -> Response:
        if not host_ok(request):
            return misdirected()
        return JSONResponse(await service.collect())

    async def metrics(request: Request) -> Response:
        if not host_ok(request):
            return misdirected()
        state = await service.collect()
        return Response(service.metrics.render(state), media_type=METRICS_TYPE)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def cancel(request: Request) -> Response:
        if not host_ok(request):
            return misdirected()
        job_id = request.path_params["job_id"]
        is_form = request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        token = service.token
        if token is None:
            return JSONResponse({"error": "actions are disabled: set status.token in the config"}, status_code=403)
        given = ""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        elif is_form:
            form = parse_qs((await request.body()).decode("utf-8", "replace"))
            given = (form.get("token") or [""])[0]
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            return JSONResponse({"error": "a valid status token is required"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        try:
            status = await service.hub.jobs.cancel(job_id)
        except UnknownJob:
            return JSONResponse({"error": f"no job {job_id!r}"}, status_code=404)
        await service.hub.bus.fire("status_action", {"action": "cancel", "job_id": job_id, "status": status},
                                   Context.new("http"))
        log.info("job %s cancelled from the status page", job_id)
        if is_form:
            return RedirectResponse("/", status_code=303)
        return JSONResponse({"job_id": job_id, "status": status})

    return Starlette(routes=[
        Route("/", page),
        Route("/api/status", api_status),
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Route("/api/jobs/{job_id}/cancel", cancel, methods=["POST"]),
    ])
