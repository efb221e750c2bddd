"""HTTP routes of the status page: `/`, `/api/status`, `/metrics`, `/healthz`, resident logs, and actions.

Read-only unless `status.token` is set; then `POST /api/jobs/{id}/cancel` cancels a job and
`POST /api/gpu/{load|unload|pin|unpin}` asks the GPU scheduler (the operator's controls) when it
carries the token (`Authorization: Bearer <token>` or a `token` form field). Requests whose Host
header is not this machine get 421, so a web page cannot reach the hub by DNS rebinding.
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from bridges.status.page import render
from hub.context import Context
from hub.errors import HubError, UnknownJob
from hub.gpu import surfaces as gpu_surfaces
from hub.net import LOCAL_HOSTS, host_name

if TYPE_CHECKING:
    from bridges.status.service import StatusService

log = logging.getLogger(__name__)

METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
def create_app(service: StatusService) -> Starlette:
    config = service.hub.config.status
    allowed = LOCAL_HOSTS | {config.host.lower()}
    open_bind = config.host in ("0.0.0.0", "::")

    def host_ok(request: Request) -> bool:
        return open_bind or host_name(request.headers.get("host", "")) in allowed

    def misdirected() -> Response:
        return PlainTextResponse("misdirected request: unknown Host\n", status_code=421)

    async def page(request: Request) -> Response:
        if not host_ok(request):
            return misdirected()
        state = await service.collect()
        answer = request.query_params.get("gpu")
        if answer:
            state["gpu_answer"] = answer[:300]
        return HTMLResponse(render(state))

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

    async def authorize(request: Request) -> tuple[Response | None, dict[str, list[str]]]:
        """The token check of every action: (a refusal or None, the form fields)."""
        is_form = request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        form = parse_qs((await request.body()).decode("utf-8", "replace")) if is_form else {}
        token = service.token
        if token is None:
            return JSONResponse({"error": "actions are disabled: set status.token in the config"},
                                status_code=403), form
        given = ""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        elif is_form:
            given = (form.get("token") or [""])[0]
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            return JSONResponse({"error": "a valid status token is required"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"}), form
        return None, form

    async def cancel(request: Request) -> Response:
        if not host_ok(request):
            return misdirected()
        job_id = request.path_params["job_id"]
        is_form = request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
        refused, _ = await authorize(request)
        if refused is not None:
            return refused
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

    async def gpu_action(request: Request) -> Response:
        """`POST /api/gpu/{load|unload|pin|unpin}` with `name` (and `for`, e.g. 30m): a request to the
        scheduler; 200 with its answer when accepted, 409 with the reason when it refuses."""
        if not host_ok(request):
            return misdirected()
        refused, form = await authorize(request)
        if refused is not None:
            return refused
        is_form = bool(form) or request.headers.get("content-type", "").startswith("application/x-www-form")
        fields = {k: v[0] for k, v in form.items()} if form else dict(request.query_params)
        op = request.path_params["op"]
        try:
            seconds = gpu_surfaces.parse_for(fields["for"]) if op == "pin" else None
        except (HubError, KeyError):
            return JSONResponse({"ok": False, "error": "pin needs `for` (e.g. 30m)"}, status_code=400)
        answer = await gpu_surfaces.control(service.hub, op, fields.get("name") or None,
                                            by=fields.get("by") or "status page", seconds=seconds,
                                            context=Context.new("http", user=fields.get("by") or "status page"))
        if is_form:
            return RedirectResponse("/?gpu=" + quote(("ok: " if answer.ok else "refused: ") + answer.message),
                                    status_code=303)
        return JSONResponse({"ok": answer.ok, "message": answer.message}, status_code=200 if answer.ok else 409)

    async def gpu_logs(request: Request) -> Response:
        """`GET /api/gpu/logs/{name}?lines=N`: the server's last lines (text)."""
        if not host_ok(request):
            return misdirected()
        try:
            lines = max(1, min(1000, int(request.query_params.get("lines", "100"))))
            text = await gpu_surfaces.logs(service.hub, request.path_params["name"], lines)
        except ValueError:
            return PlainTextResponse("lines must be a number\n", status_code=400)
        except HubError as exc:
            return PlainTextResponse(f"{exc}\n", status_code=404)
        return PlainTextResponse(text)

    return Starlette(routes=[
        Route("/api/gpu/logs/{name}", gpu_logs),
        Route("/api/gpu/{op}", gpu_action, methods=["POST"]),
        Route("/", page),
        Route("/api/status", api_status),
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Route("/api/jobs/{job_id}/cancel", cancel, methods=["POST"]),
    ])
