"""ComfyUI-compatible stand-in (HTTP + WebSocket), reproducing a real ComfyUI 0.3.64 capture.

`create_app(**options)` returns a starlette app. It knows the FLUX.1-schnell node types and the
model-free ones, writes real PNGs of the requested size, sends the same WebSocket frames in the
same order, and answers every route under `/api/...` as well. Options:
`base_dir` (output/input/temp live there; default a fresh temp dir), `step_delay` (seconds per
sampler step), `node_delay` (seconds per executed node), `load_delay` (lazy model load on the
first prompt and after `/free {"unload_models": true}`), `fail_class_type` (+ `fail_message`,
`fail_exception_type`) to inject an execution error, `models` (loader combo lists), `device`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
import uuid
from email.utils import formatdate
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from hub.sim.comfyui_exec import Client, ComfyState, QueueItem, dumps, new_prompt_id
from hub.sim.comfyui_nodes import node_defs
from hub.sim.comfyui_validate import validate_prompt

JSON_TYPE = "application/json; charset=utf-8"
MAX_UPLOAD = 104857600
GiB = 1024**3


def _json(obj: Any, status: int = 200) -> Response:
    return Response(dumps(obj), status_code=status, media_type=JSON_TYPE)


def _trouble() -> Response:
    """aiohttp's answer to an unhandled exception in a handler."""
    return Response(
        "500 Internal Server Error\n\nServer got itself in trouble",
        status_code=500,
        media_type="text/plain; charset=utf-8",
        headers={"Connection": "close"},
    )


def _empty(status: int = 200) -> Response:
    return Response(b"", status_code=status)


async def _body_json(request: Request) -> Any:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


def create_app(
    *,
    base_dir: str | Path | None = None,
    step_delay: float = 0.02,
    node_delay: float = 0.0,
    load_delay: float = 0.2,
    fail_class_type: str | None = None,
    fail_message: str | None = None,
    fail_exception_type: str | None = None,
    models: dict[str, list[str]] | None = None,
    device: str = "cuda",
    vram_total: int = 128 * GiB,
) -> Starlette:
    owned = base_dir is None  # a temp dir of our own is removed at shutdown
    base = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="comfyui-sim-"))
    for sub in ("output", "input", "temp"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    state = ComfyState(
        defs=node_defs(models),
        base_dir=base,
        step_delay=step_delay,
        node_delay=node_delay,
        load_delay=load_delay,
        fail_class_type=fail_class_type,
    )
    if fail_message:
        state.fail_message = fail_message
    if fail_exception_type:
        state.fail_exception_type = fail_exception_type

    async def system_stats(request: Request) -> Response:
        used = (20 * GiB) if state.models_loaded else 0
        dev = {
            "name": "cuda:0 NVIDIA GB10 : cudaMallocAsync" if device == "cuda" else "cpu",
            "type": device,
            "index": 0 if device == "cuda" else None,
            "vram_total": vram_total,
            "vram_free": vram_total - used,
            "torch_vram_total": vram_total,
            "torch_vram_free": vram_total - used,
        }
        return _json(
            {
                "system": {
                    "os": "posix",
                    "ram_total": vram_total,
                    "ram_free": vram_total - used,
                    "comfyui_version": "0.3.64",
                    "required_frontend_version": "1.27.10",
                    "installed_templates_version": "0.1.95",
                    "required_templates_version": "0.1.95",
                    "python_version": "3.11.7",
                    "pytorch_version": "2.13.0",
                    "embedded_python": False,
                    "argv": ["main.py", "--listen", "0.0.0.0", "--port", "8188"],
                },
                "devices": [dev],
            }
        )

    async def get_prompt(request: Request) -> Response:
        return _json({"exec_info": {"queue_remaining": state.queue_remaining()}})

    async def post_prompt(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _trouble()
        number = state.number
        state.number += 1
        if not isinstance(body, dict) or "prompt" not in body:
            return _json(
                {
                    "error": {
                        "type": "no_prompt",
                        "message": "No prompt provided",
                        "details": "No prompt provided",
                        "extra_info": {},
                    },
                    "node_errors": {},
                },
                400,
            )
        graph = body["prompt"]
        if not isinstance(graph, dict):
            return _trouble()  # the real server crashes in validate_prompt the same way
        error, outputs, node_errors = validate_prompt(graph, state.defs)
        if error is not None:
            return _json({"error": error, "node_errors": node_errors}, 400)
        extra = dict(body.get("extra_data") or {})
        if "client_id" in body:
            extra["client_id"] = body["client_id"]
        prompt_id = str(body.get("prompt_id") or new_prompt_id())
        await state.enqueue(QueueItem(number, prompt_id, graph, extra, outputs))
        return _json({"prompt_id": prompt_id, "number": number, "node_errors": node_errors})

    async def object_info(request: Request) -> Response:
        cls = request.path_params.get("node_class")
        if cls is None:
            return _json({name: d.info() for name, d in state.defs.items()})
        d = state.defs.get(cls)
        return _json({cls: d.info()} if d else {})

    async def features(request: Request) -> Response:
        return _json({"supports_preview_metadata": True, "max_upload_size": MAX_UPLOAD})

    async def empty_list(request: Request) -> Response:
        return _json([])

    async def get_history(request: Request) -> Response:
        pid = request.path_params.get("prompt_id")
        if pid is not None:
            return _json({pid: state.history[pid]} if pid in state.history else {})
        items = list(state.history.items())
        max_items = request.query_params.get("max_items")
        if max_items:
            items = items[-int(max_items) :]
        return _json(dict(items))

    async def post_history(request: Request) -> Response:
        body = await _body_json(request)
        if body.get("clear"):
            state.history.clear()
        for pid in body.get("delete", []):
            state.history.pop(pid, None)
        return _empty()

    async def get_queue(request: Request) -> Response:
        running = [state.running.as_list()] if state.running else []
        return _json({"queue_running": running, "queue_pending": [i.as_list() for i in state.pending]})

    async def post_queue(request: Request) -> Response:
        body = await _body_json(request)
        if body.get("clear"):
            state.pending.clear()
        if body.get("delete"):
            state.pending = [i for i in state.pending if i.prompt_id not in body["delete"]]
        await state.broadcast_status()
        return _empty()

    async def interrupt(request: Request) -> Response:
        with contextlib.suppress(ValueError):
            body = await _body_json(request)
            target = body.get("prompt_id") if isinstance(body, dict) else None
            if state.running and (target is None or target == state.running.prompt_id):
                state.interrupt_flag = True
        return _empty()

    async def free(request: Request) -> Response:
        body = await _body_json(request)
        if body.get("unload_models"):
            state.models_loaded = False
        if body.get("free_memory"):
            state.cache = {}
        return _empty()

    async def view(request: Request) -> Response:
        q = request.query_params
        filename = q.get("filename", "")
        if not filename:
            return _empty(404)
        if filename.startswith("/") or ".." in filename:
            return _empty(400)
        root = state.dir_for(q.get("type", "output"))
        if root is None:
            return _empty(400)
        folder = (root / q.get("subfolder", "")).resolve()
        if not str(folder).startswith(str(root.resolve())):
            return _empty(403)
        path = folder / filename
        if not path.is_file():
            return _empty(404)
        data = path.read_bytes()
        st = path.stat()
        return Response(
            data,
            media_type="image/png" if filename.endswith(".png") else "application/octet-stream",
            headers={
                "Content-Disposition": f'filename="{filename}"',
                "Etag": f'"{st.st_mtime_ns:x}-{st.st_size:x}"',
                "Last-Modified": formatdate(st.st_mtime, usegmt=True),
                "Accept-Ranges": "bytes",
            },
        )

    async def ws_endpoint(ws: WebSocket) -> None:
        await ws.accept()
        sid = ws.query_params.get("clientId") or uuid.uuid4().hex
        client = Client(ws)
        state.clients[sid] = client
        try:
            await ws.send_text(
                dumps(
                    {
                        "type": "status",
                        "data": {"status": {"exec_info": {"queue_remaining": state.queue_remaining()}}, "sid": sid},
                    }
                )
            )
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if not text:
                    continue  # binary from a client: ignored, as ComfyUI does
                with contextlib.suppress(ValueError, AttributeError):
                    msg = json.loads(text)
                    if msg.get("type") == "feature_flags":
                        client.preview_metadata = bool(msg.get("data", {}).get("supports_preview_metadata"))
                        await ws.send_text(
                            dumps(
                                {
                                    "type": "feature_flags",
                                    "data": {"supports_preview_metadata": True, "max_upload_size": MAX_UPLOAD},
                                }
                            )
                        )
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if state.clients.get(sid) is client:
                del state.clients[sid]

    routes: list = []
    for prefix in ("", "/api"):
        routes += [
            Route(prefix + "/system_stats", system_stats),
            Route(prefix + "/prompt", get_prompt, methods=["GET"]),
            Route(prefix + "/prompt", post_prompt, methods=["POST"]),
            Route(prefix + "/object_info", object_info),
            Route(prefix + "/object_info/{node_class}", object_info),
            Route(prefix + "/features", features),
            Route(prefix + "/embeddings", empty_list),
            Route(prefix + "/extensions", empty_list),
            Route(prefix + "/history", get_history, methods=["GET"]),
            Route(prefix + "/history", post_history, methods=["POST"]),
            Route(prefix + "/history/{prompt_id}", get_history),
            Route(prefix + "/queue", get_queue, methods=["GET"]),
            Route(prefix + "/queue", post_queue, methods=["POST"]),
            Route(prefix + "/interrupt", interrupt, methods=["POST"]),
            Route(prefix + "/free", free, methods=["POST"]),
            Route(prefix + "/view", view),
            WebSocketRoute(prefix + "/ws", ws_endpoint),
        ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        task = asyncio.create_task(state.worker())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if owned:
                shutil.rmtree(base, ignore_errors=True)

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.comfy = state
    return app
