"""Control endpoints the LLM stand-ins share (not part of any real API): scripted replies, faults."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def script_and_fault_routes(sim: Any) -> list[Route]:
    """`POST /_sim/script` queues replies for `sim.responder`; `POST /_sim/faults` updates `sim.faults`."""

    async def sim_script(request: Request) -> Response:
        body = await request.json()
        if body.get("clear"):
            sim.responder.clear()
        sim.responder.push(body.get("responses", []))
        return JSONResponse({"queued": len(sim.responder.queue)})

    async def sim_faults(request: Request) -> Response:
        try:
            sim.faults.update(await request.json())
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(sim.faults.describe())

    return [Route("/_sim/script", sim_script, methods=["POST"]),
            Route("/_sim/faults", sim_faults, methods=["POST"])]
