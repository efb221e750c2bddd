"""Queue, executor and history of the ComfyUI stand-in.

Frame order, field order and history shapes follow the reference capture of ComfyUI 0.3.64
(`comfyui-transcript.json`): that capture is the oracle, not this file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import string
import struct
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.sim.comfyui_nodes import MODEL_LOADERS, Image, NodeDef, evaluate
from hub.sim.comfyui_png import encode_png, invert_rows, pattern_rows, solid_rows


def dumps(obj: Any) -> str:
    """Python json.dumps defaults (', ' / ': '), as aiohttp's json_response writes them."""
    return json.dumps(obj)


def now_ms() -> int:
    return int(time.time() * 1000)


class Interrupted(Exception):
    pass


class NodeFailed(Exception):
    def __init__(self, message: str, exception_type: str = "Exception") -> None:
        super().__init__(message)
        self.exception_type = exception_type


@dataclass
class QueueItem:
    number: int
    prompt_id: str
    graph: dict
    extra_data: dict
    outputs: list[str]

    def as_list(self) -> list:
        return [self.number, self.prompt_id, self.graph, self.extra_data, self.outputs]


@dataclass
class Client:
    ws: Any
    preview_metadata: bool = False


@dataclass
class ComfyState:
    defs: dict[str, NodeDef]
    base_dir: Path
    step_delay: float = 0.0
    node_delay: float = 0.0
    load_delay: float = 0.0
    fail_class_type: str | None = None
    fail_message: str = "Allocation on device 0 would exceed allowed memory. (out of memory)"
    fail_exception_type: str = "torch.OutOfMemoryError"
    number: int = 0
    pending: list[QueueItem] = field(default_factory=list)
    running: QueueItem | None = None
    history: dict[str, dict] = field(default_factory=dict)
    clients: dict[str, Client] = field(default_factory=dict)
    cache: dict[str, tuple] = field(default_factory=dict)  # signature -> (outputs, ui)
    models_loaded: bool = False
    interrupt_flag: bool = False
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def output_dir(self) -> Path:
        return self.base_dir / "output"

    def dir_for(self, type_: str) -> Path | None:
        return {
            "output": self.base_dir / "output",
            "input": self.base_dir / "input",
            "temp": self.base_dir / "temp",
        }.get(type_)

    def queue_remaining(self) -> int:
        return len(self.pending) + (1 if self.running else 0)

    # ---- websocket fan-out ---------------------------------------------------------------------
    async def send(self, event: str, data: dict, sid: str | None = None) -> None:
        raw = dumps({"type": event, "data": data})
        targets = [sid] if sid is not None else list(self.clients)
        for s in targets:
            client = self.clients.get(s)
            if client is None:
                continue
            try:
                await client.ws.send_text(raw)
            except Exception:
                self.clients.pop(s, None)

    async def send_bytes(self, sid: str | None, payload_for: Any) -> None:
        targets = [sid] if sid is not None else list(self.clients)
        for s in targets:
            client = self.clients.get(s)
            if client is None:
                continue
            with contextlib.suppress(Exception):
                await client.ws.send_bytes(payload_for(client))

    async def broadcast_status(self) -> None:
        await self.send("status", {"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}})

    # ---- queue -----------------------------------------------------------------------------------
    async def enqueue(self, item: QueueItem) -> None:
        self.pending.append(item)
        self.pending.sort(key=lambda i: i.number)
        await self.broadcast_status()
        self.wakeup.set()

    async def worker(self) -> None:
        while True:
            if not self.pending:
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            item = self.pending.pop(0)
            self.running = item
            self.interrupt_flag = False
            await self.broadcast_status()
            try:
                await Execution(self, item).run()
            finally:
                self.running = None
            await self.broadcast_status()
            await self.send("executing", {"node": None, "prompt_id": item.prompt_id}, item.extra_data.get("client_id"))


def _signature(graph: dict, node_id: str, memo: dict[str, str]) -> str:
    if node_id in memo:
        return memo[node_id]
    node = graph[node_id]
    parts = []
    for name, val in node.get("inputs", {}).items():
        if isinstance(val, list) and len(val) == 2:
            parts.append((name, _signature(graph, str(val[0]), memo), val[1]))
        else:
            parts.append((name, val))
    memo[node_id] = json.dumps([node["class_type"], parts], default=str)
    return memo[node_id]


def render_rows(img: Image, index: int) -> list[bytes]:
    if img.color is not None:
        rows = solid_rows(img.width, img.height, img.color)
    else:
        rows = pattern_rows(img.width, img.height, f"{img.seed}#{index}")
    return invert_rows(rows) if img.inverted else rows


class Execution:
    """One prompt run: dependency order, cache, progress frames, outputs, history entry."""

    def __init__(self, state: ComfyState, item: QueueItem) -> None:
        self.s = state
        self.item = item
        self.pid = item.prompt_id
        self.sid = item.extra_data.get("client_id")
        self.graph = item.graph
        self.values: dict[str, tuple] = {}
        self.ui: dict[str, dict] = {}
        self.meta: dict[str, dict] = {}
        self.executed: list[str] = []
        self.messages: list[list] = []
        self.progress: dict[str, dict] = {}
        self.new_cache: dict[str, tuple] = {}

    async def msg(self, event: str, data: dict) -> None:
        if event.startswith("execution_"):
            self.messages.append([event, data])
        await self.s.send(event, data, self.sid)

    def order(self) -> list[str]:
        seen: list[str] = []

        def visit(nid: str) -> None:
            if nid in seen:
                return
            for val in self.graph[nid].get("inputs", {}).values():
                if isinstance(val, list) and len(val) == 2:
                    visit(str(val[0]))
            seen.append(nid)

        for o in self.item.outputs:
            visit(o)
        return seen

    async def progress_state(self, nid: str, value: float, max_: float, state: str) -> None:
        self.progress[nid] = {
            "value": value,
            "max": max_,
            "state": state,
            "node_id": nid,
            "prompt_id": self.pid,
            "display_node_id": nid,
            "parent_node_id": None,
            "real_node_id": nid,
        }
        await self.s.send("progress_state", {"prompt_id": self.pid, "nodes": dict(self.progress)}, self.sid)

    async def run(self) -> None:
        order = self.order()
        memo: dict[str, str] = {}
        sigs = {nid: _signature(self.graph, nid, memo) for nid in order}
        volatile = {nid for nid in order if self.s.defs[self.graph[nid]["class_type"]].never_cached}
        cached = [nid for nid in self.graph if nid in sigs and nid not in volatile and sigs[nid] in self.s.cache]
        await self.msg("execution_start", {"prompt_id": self.pid, "timestamp": now_ms()})
        await self.msg("execution_cached", {"nodes": cached, "prompt_id": self.pid, "timestamp": now_ms()})
        current = None
        try:
            for nid in order:
                current = nid
                if nid in cached:
                    outputs, ui = self.s.cache[sigs[nid]]
                    self.values[nid] = outputs
                    self.new_cache[sigs[nid]] = (outputs, ui)
                    if ui is not None:
                        self.ui[nid] = ui
                        self.meta[nid] = self._meta(nid)
                        await self.s.send(
                            "executed",
                            {"node": nid, "display_node": nid, "output": ui, "prompt_id": self.pid},
                            self.sid,
                        )
                        await self.progress_state(nid, 1, 1, "finished")
                    continue
                await self.execute_node(nid)
                self.new_cache[sigs[nid]] = (self.values[nid], self.ui.get(nid))
                self.executed.append(nid)
        except Interrupted:
            node = self.graph[current]
            await self.msg(
                "execution_interrupted",
                {
                    "prompt_id": self.pid,
                    "node_id": current,
                    "node_type": node["class_type"],
                    "executed": list(reversed(self.executed)),
                    "timestamp": now_ms(),
                },
            )
            self.finish("error", completed=False)
            return
        except NodeFailed as ex:
            node = self.graph[current]
            await self.msg(
                "execution_error",
                {
                    "prompt_id": self.pid,
                    "node_id": current,
                    "node_type": node["class_type"],
                    "executed": list(reversed(self.executed)),
                    "exception_message": f"{ex}\n",
                    "exception_type": ex.exception_type,
                    "traceback": ['  File "<path>/execution.py", line 496, in execute\n    <source line redacted>\n'],
                    "current_inputs": self.current_inputs(current),
                    "current_outputs": [current, *reversed(self.executed)],
                    "timestamp": now_ms(),
                },
            )
            self.finish("error", completed=False, keep_outputs=False)
            return
        finally:
            self.s.cache = self.new_cache
        await self.msg("execution_success", {"prompt_id": self.pid, "timestamp": now_ms()})
        self.finish("success", completed=True)

    def current_inputs(self, nid: str) -> dict:
        node = self.graph[nid]
        shown: dict[str, list] = {}
        for k, v in node.get("inputs", {}).items():
            linked = isinstance(v, list) and len(v) == 2 and str(v[0]) in self.values
            shown[k] = [repr(self.values[str(v[0])][v[1]]) if linked else repr(v)]
        hidden = self.s.defs[node["class_type"]].hidden
        if "prompt" in hidden:
            shown["prompt"] = [repr(self.graph)]
        if "extra_pnginfo" in hidden:
            shown["extra_pnginfo"] = [self.item.extra_data.get("extra_pnginfo")]
        return shown

    def _meta(self, nid: str) -> dict:
        return {"node_id": nid, "display_node": nid, "parent_node": None, "real_node_id": nid}

    def finish(self, status: str, completed: bool, keep_outputs: bool = True) -> None:
        self.s.history[self.pid] = {
            "prompt": self.item.as_list(),
            "outputs": self.ui if keep_outputs else {},
            "status": {"status_str": status, "completed": completed, "messages": self.messages},
            "meta": self.meta if keep_outputs else {},
        }

    def check_interrupt(self) -> None:
        if self.s.interrupt_flag:
            self.s.interrupt_flag = False
            raise Interrupted()

    async def execute_node(self, nid: str) -> None:
        node = self.graph[nid]
        ct = node["class_type"]
        d = self.s.defs[ct]
        await self.progress_state(nid, 0.0, 1.0, "running")
        await self.s.send("executing", {"node": nid, "display_node": nid, "prompt_id": self.pid}, self.sid)
        self.check_interrupt()
        inputs = {}
        for name, val in node.get("inputs", {}).items():
            inputs[name] = self.values[str(val[0])][val[1]] if isinstance(val, list) and len(val) == 2 else val
        if ct in MODEL_LOADERS and not self.s.models_loaded:
            await asyncio.sleep(self.s.load_delay)  # lazy model load on the first prompt
        if self.s.node_delay:
            await asyncio.sleep(self.s.node_delay)
        if ct == self.s.fail_class_type:
            raise NodeFailed(self.s.fail_message, self.s.fail_exception_type)
        finished = (1.0, 1.0)
        if d.progress_steps_input:
            steps = int(inputs[d.progress_steps_input])
            for i in range(1, steps + 1):
                await asyncio.sleep(self.s.step_delay)
                self.check_interrupt()
                await self.progress_state(nid, i, steps, "running")
                await self.s.send("progress", {"value": i, "max": steps, "prompt_id": self.pid, "node": nid}, self.sid)
            finished = (steps, steps)
        if ct in MODEL_LOADERS:
            self.s.models_loaded = True
        self.values[nid] = evaluate(ct, inputs)
        if ct in ("SaveImage", "PreviewImage"):
            ui = {"images": self.save_images(nid, inputs)}
            self.ui[nid] = ui
            self.meta[nid] = self._meta(nid)
            await self.s.send(
                "executed", {"node": nid, "display_node": nid, "output": ui, "prompt_id": self.pid}, self.sid
            )
        elif ct == "SaveImageWebsocket":
            finished = await self.stream_images(nid, inputs["images"])
        await self.progress_state(nid, *finished, "finished")

    async def stream_images(self, nid: str, img: Image) -> tuple[int, int]:
        for i in range(img.batch):
            await self.progress_state(nid, i, img.batch, "running")
            png = encode_png(img.width, img.height, render_rows(img, i))
            meta = dumps(
                {
                    "node_id": nid,
                    "prompt_id": self.pid,
                    "display_node_id": nid,
                    "parent_node_id": None,
                    "real_node_id": nid,
                    "image_type": "image/png",
                }
            ).encode()

            def frame(client: Client, png: bytes = png, meta: bytes = meta) -> bytes:
                if client.preview_metadata:
                    return struct.pack(">II", 4, len(meta)) + meta + png
                return struct.pack(">II", 1, 2) + png

            progress = {"value": i, "max": img.batch, "prompt_id": self.pid, "node": nid}
            flags = self.sid in self.s.clients and self.s.clients[self.sid].preview_metadata
            if flags:
                await self.s.send_bytes(self.sid, frame)
                await self.s.send("progress", progress, self.sid)
            else:
                await self.s.send("progress", progress, self.sid)
                await self.s.send_bytes(self.sid, frame)
        return img.batch, img.batch

    def save_images(self, nid: str, inputs: dict) -> list[dict]:
        img: Image = inputs["images"]
        if self.graph[nid]["class_type"] == "PreviewImage":
            base = self.s.base_dir / "temp"
            prefix = "ComfyUI_temp_" + "".join(random.choice(string.ascii_lowercase) for _ in range(5))
            type_ = "temp"
        else:
            base = self.s.output_dir
            prefix = str(inputs.get("filename_prefix", "ComfyUI"))
            type_ = "output"
        out_dir = str(base.resolve())
        norm = os.path.normpath(prefix)
        subfolder, filename = os.path.dirname(norm), os.path.basename(norm)
        full = os.path.abspath(os.path.join(out_dir, subfolder))
        common = os.path.commonpath((out_dir, full))
        if common != out_dir:
            raise NodeFailed(
                "**** ERROR: Saving image outside the output folder is not allowed."
                f"\n full_output_folder: {full}\n         output_dir: {out_dir}"
                f"\n         commonpath: {common}"
            )
        os.makedirs(full, exist_ok=True)
        counter = 1
        for f in os.listdir(full):
            if f.startswith(filename + "_") and f.endswith("_.png"):
                with contextlib.suppress(ValueError):
                    counter = max(counter, int(f[len(filename) + 1 : -5]) + 1)
        text = {"prompt": dumps(self.graph)}
        for k, v in (self.item.extra_data.get("extra_pnginfo") or {}).items():
            text[k] = dumps(v)
        results = []
        for i in range(img.batch):
            name = f"{filename}_{counter:05}_.png"
            Path(full, name).write_bytes(encode_png(img.width, img.height, render_rows(img, i), text))
            results.append({"filename": name, "subfolder": subfolder, "type": type_})
            counter += 1
        return results


def new_prompt_id() -> str:
    return str(uuid.uuid4())
