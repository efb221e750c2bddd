"""A ComfyUI client: queue a graph, follow it on the WebSocket (or poll /history), fetch images.

Errors name the failing node and its type, whether ComfyUI rejects the graph (HTTP 400 with
`node_errors`) or a node fails while running (`execution_error`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from hub.errors import BackendDown, HubError

Progress = Callable[[int, int, str], Awaitable[None]]


class ComfyError(HubError):
    def __init__(self, message: str, node_id: str | None = None, node_type: str | None = None) -> None:
        super().__init__(message)
        self.node_id, self.node_type = node_id, node_type


@dataclass
class OutputImage:
    node_id: str
    filename: str
    subfolder: str
    type: str
    data: bytes


def rejection_message(body: dict[str, Any], graph: dict[str, Any]) -> ComfyError:
    """Turn a 400 from /prompt into one line naming the node (or nodes) at fault."""
    error = body.get("error") or {}
    if isinstance(error, str):
        error = {"message": error}
    node_errors = body.get("node_errors") or {}
    if node_errors:
        parts = []
        for node_id, info in node_errors.items():
            details = "; ".join(
                f"{e.get('message', '')}: {e.get('details', '')}".rstrip(": ") for e in info.get("errors", [])
            )
            parts.append(f"node {node_id} ({info.get('class_type', '?')}): {details}")
        first_id, first = next(iter(node_errors.items()))
        return ComfyError("ComfyUI rejected the workflow: " + " | ".join(parts), first_id, first.get("class_type"))
    match = re.search(r"#([^']+)'", str(error.get("details", "")))
    node_id = match.group(1) if match else None
    node_type = (graph.get(node_id) or {}).get("class_type") if node_id else None
    where = f"node {node_id} ({node_type}): " if node_id else ""
    return ComfyError(
        f"ComfyUI rejected the workflow: {where}{error.get('message', 'invalid prompt')}", node_id, node_type
    )


class ComfyClient:
    def __init__(self, base_url: str, *, timeout: float = 600.0, poll_interval: float = 1.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.poll_interval = poll_interval

    async def run(self, graph: dict[str, Any], on_progress: Progress | None = None) -> list[OutputImage]:
        """Queue `graph`, wait for it to finish, return its saved images."""
        client_id = uuid.uuid4().hex
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as http:
            ws = None
            with contextlib.suppress(OSError, TimeoutError, WebSocketException):
                ws = await connect(self.ws_url(client_id), max_size=None, open_timeout=10)
            prompt_id = None
            try:
                prompt_id = await self.submit(http, graph, client_id)
                async with asyncio.timeout(self.timeout):
                    if ws is not None:
                        try:
                            await self.follow(ws, prompt_id, graph, on_progress)
                        except ConnectionClosed:
                            await self.poll(http, prompt_id, graph)  # the socket dropped: fall back
                    else:
                        await self.poll(http, prompt_id, graph)
            except (TimeoutError, asyncio.CancelledError) as exc:
                if prompt_id is not None:  # do not leave the GPU busy with work nobody waits for
                    await self.abandon(http, prompt_id)
                if isinstance(exc, TimeoutError):
                    raise ComfyError(f"ComfyUI did not finish the image within {self.timeout:g} s") from None
                raise
            except httpx.TransportError as exc:
                raise self.lost(exc) from None
            finally:
                if ws is not None:
                    await ws.close()
            try:
                return await self.fetch_outputs(http, prompt_id, graph)
            except httpx.TransportError as exc:
                raise self.lost(exc) from None

    def lost(self, exc: httpx.TransportError) -> BackendDown:
        """ComfyUI went away mid-job (crashed, stopped, out of memory): say that, not "ReadError: "."""
        detail = str(exc).strip() or {"ReadError": "the connection was cut", "ConnectError": "connection refused",
                                      "RemoteProtocolError": "it closed the connection mid-answer"}.get(
            type(exc).__name__, type(exc).__name__)
        return BackendDown(f"ComfyUI at {self.base_url} stopped answering while the image was rendering "
                           f"({detail}); it may have crashed or been stopped — the job was not finished")

    async def abandon(self, http: httpx.AsyncClient, prompt_id: str) -> None:
        """Best effort: drop the prompt from the queue, or interrupt it if it already runs."""
        with contextlib.suppress(httpx.HTTPError):
            await asyncio.shield(http.post("/queue", json={"delete": [prompt_id]}))
            await asyncio.shield(http.post("/interrupt", json={"prompt_id": prompt_id}))

    def ws_url(self, client_id: str) -> str:
        return self.base_url.replace("http://", "ws://").replace("https://", "wss://") + f"/ws?clientId={client_id}"

    async def submit(self, http: httpx.AsyncClient, graph: dict[str, Any], client_id: str) -> str:
        try:
            resp = await http.post("/prompt", json={"prompt": graph, "client_id": client_id})
        except httpx.TransportError as exc:
            raise BackendDown(f"ComfyUI at {self.base_url} is unreachable: {exc}") from None
        if resp.status_code == 400:
            raise rejection_message(resp.json(), graph)
        if resp.status_code != 200:
            raise ComfyError(f"ComfyUI answered {resp.status_code} to /prompt: {resp.text[:200]}")
        return resp.json()["prompt_id"]

    async def follow(self, ws, prompt_id: str, graph: dict[str, Any], on_progress: Progress | None) -> None:
        """Read frames until `executing` with node null for our prompt (ComfyUI's last frame)."""
        while True:
            raw = await ws.recv()
            if isinstance(raw, bytes):
                continue  # previews
            msg = json.loads(raw)
            data = msg.get("data") or {}
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            kind = msg.get("type")
            if kind == "progress" and on_progress is not None:
                node = str(data.get("node"))
                await on_progress(int(data["value"]), int(data["max"]), graph.get(node, {}).get("class_type", node))
            elif kind == "execution_error":
                raise self.execution_error(data)
            elif kind == "execution_interrupted":
                raise ComfyError(
                    f"ComfyUI interrupted the job at node {data.get('node_id')} ({data.get('node_type')})",
                    data.get("node_id"),
                    data.get("node_type"),
                )
            elif kind == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
                return

    @staticmethod
    def execution_error(data: dict[str, Any]) -> ComfyError:
        message = str(data.get("exception_message", "")).strip().splitlines()
        return ComfyError(
            f"ComfyUI node {data.get('node_id')} ({data.get('node_type')}) failed: "
            f"{data.get('exception_type', 'error')}: {message[0] if message else ''}",
            data.get("node_id"),
            data.get("node_type"),
        )

    async def poll(self, http: httpx.AsyncClient, prompt_id: str, graph: dict[str, Any]) -> None:
        """The fallback when the WebSocket is unavailable: poll /history until the entry appears."""
        while True:
            entry = await self.history(http, prompt_id)
            if entry is not None:
                status = entry.get("status") or {}
                if status.get("status_str") == "error" or status.get("completed") is False:
                    for name, data in status.get("messages", []):
                        if name == "execution_error":
                            raise self.execution_error(data)
                        if name == "execution_interrupted":
                            raise ComfyError(f"ComfyUI interrupted the job at node {data.get('node_id')}")
                    raise ComfyError("ComfyUI reported an error for the job")
                return
            await asyncio.sleep(self.poll_interval)

    async def history(self, http: httpx.AsyncClient, prompt_id: str) -> dict[str, Any] | None:
        resp = await http.get(f"/history/{prompt_id}")
        resp.raise_for_status()
        return resp.json().get(prompt_id)

    async def fetch_outputs(self, http: httpx.AsyncClient, prompt_id: str, graph: dict[str, Any]) -> list[OutputImage]:
        entry = await self.history(http, prompt_id)
        if entry is None:
            raise ComfyError(f"ComfyUI has no history for prompt {prompt_id}")
        if (entry.get("status") or {}).get("status_str") == "error":
            await self.poll(http, prompt_id, graph)  # raises with the node named
        images = []
        for node_id, output in (entry.get("outputs") or {}).items():
            for img in output.get("images", []):
                if img.get("type") != "output":
                    continue
                params = {"filename": img["filename"], "subfolder": img.get("subfolder", ""), "type": img["type"]}
                resp = await http.get("/view", params=params)
                if resp.status_code != 200:
                    raise ComfyError(f"ComfyUI /view answered {resp.status_code} for {img['filename']}")
                images.append(OutputImage(node_id, img["filename"], params["subfolder"], img["type"], resp.content))
        if not images:
            raise ComfyError("the workflow produced no saved image (does it end in a SaveImage node?)")
        return images
