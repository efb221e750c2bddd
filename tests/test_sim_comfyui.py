"""The ComfyUI stand-in replays the reference capture of a real ComfyUI 0.3.64 (the oracle).

Every request of `comfyui-transcript.json` is sent again, in order, to the stand-in; status codes,
content types, JSON key order and value types, WebSocket frame order and history shapes must match.
"""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from hub.sim.comfyui import create_app
from hub.sim.comfyui_png import png_info
from hub.sim.serve import serve_app

TRANSCRIPT = Path(__file__).parent / "data" / "reference" / "comfyui-transcript.json"


def shape(v):
    """Keys in order and value types; a list of strings is one shape whatever its length."""
    if isinstance(v, dict):
        return [(k, shape(x)) for k, x in v.items()]
    if isinstance(v, list):
        if v and all(isinstance(x, str) for x in v):
            return "list[str]"
        return [shape(x) for x in v]
    return type(v).__name__


def frame_kind(f) -> str:
    if isinstance(f, bytes):
        return f"<binary type={struct.unpack('>I', f[:4])[0]}>"
    return json.loads(f)["type"]


def ref_kind(f: dict) -> str:
    if f["kind"] == "binary":
        return f"<binary type={f['event_type_be_u32']}>"
    return f["json"]["type"]


def check_http(resp: httpx.Response, ref: dict, ids: dict[str, str] | None = None) -> None:
    r = ref["response"]
    assert resp.status_code == r["status"], (ref["request"], resp.text)
    assert resp.headers.get("content-type") == r["content_type"], ref["request"]
    if r["content_type"] is None:
        assert resp.content == b""
        assert resp.headers["content-length"] == "0"
    if r.get("body_json") is not None or (r["content_type"] or "").startswith("application/json"):
        body = resp.json()
        ref_body = r.get("body_json", json.loads(r["body_text"]))
        assert shape(body) == shape(_swap(ref_body, ids or {})), ref["request"]
    elif "body_text" in r and r["content_type"] and r["content_type"].startswith("text/"):
        assert resp.text == r["body_text"]


def _swap(obj, ids: dict[str, str]):
    """Rename the capture's prompt ids (used as keys) to the stand-in's ones."""
    if isinstance(obj, dict):
        return {ids.get(k, k): _swap(v, ids) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_swap(x, ids) for x in obj]
    return obj


class Replayer:
    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self.url, self.http = url, client
        self.ws_url = url.replace("http://", "ws://")

    async def request(self, req: dict) -> httpx.Response:
        kwargs = {}
        if "json" in req:
            kwargs["json"] = req["json"]
        elif "raw_body" in req:
            kwargs["content"] = req["raw_body"].encode()
        return await self.http.request(req["method"], self.url + req["path"], **kwargs)

    async def scenario(self, sc: dict, during=None) -> None:
        async with connect(self.ws_url + sc["ws_url"], max_size=None) as ws:
            first = json.loads(await ws.recv())
            assert first == sc["ws_frames"][0]["json"]
            if "client_sent_first_ws_message" in sc:
                await ws.send(json.dumps(sc["client_sent_first_ws_message"]))
            resp = await self.request(sc["post_prompt"]["request"])
            check_http(resp, sc["post_prompt"])
            ref_post = sc["post_prompt"]["response"]
            frames: list = [json.dumps(first)]
            if resp.status_code != 200:
                with pytest.raises(asyncio.TimeoutError):
                    frames.append(await asyncio.wait_for(ws.recv(), 0.2))
                assert resp.json() == ref_post["body_json"]
                return
            body = resp.json()
            assert body["number"] == ref_post["body_json"]["number"]
            pid = body["prompt_id"]
            ref_pid = ref_post["body_json"]["prompt_id"]
            if "client_sent_first_ws_message" in sc:
                frames.append(await ws.recv())
            while True:
                f = await asyncio.wait_for(ws.recv(), 10)
                frames.append(f)
                if isinstance(f, str):
                    msg = json.loads(f)
                    if msg["type"] == "executing" and msg["data"]["node"] == "2" and during:
                        await during(pid)
                        during = None
                    if msg["type"] == "executing" and msg["data"]["node"] is None:
                        break
        ref_frames = sc["ws_frames"]
        assert [frame_kind(f) for f in frames] == [ref_kind(f) for f in ref_frames]
        for mine, ref in zip(frames, ref_frames, strict=True):
            if ref["kind"] == "text":
                assert shape(json.loads(mine)) == shape(ref["json"]), ref["raw"]
            elif ref["event_type_be_u32"] == 4:
                (mlen,) = struct.unpack(">I", mine[4:8])
                meta = json.loads(mine[8 : 8 + mlen])
                assert list(meta) == list(ref["metadata_json"])
                assert png_info(mine[8 + mlen :])["width"] == ref["image_png"]["width"]
                assert len(mine) == ref["length"] - ref["image_len"] + len(mine[8 + mlen :])
            else:
                assert mine[4:8] == struct.pack(">I", ref["second_u32_be"])
                info = png_info(mine[8:])
                assert (info["width"], info["height"]) == (ref["image_png"]["width"], ref["image_png"]["height"])
        hist = await self.http.get(f"{self.url}/history/{pid}")
        check_http(hist, sc["get_history_prompt_id"], {ref_pid: pid})
        ref_hist = sc["get_history_prompt_id"]["response"]["body_json"][ref_pid]
        mine_hist = hist.json()[pid]
        assert mine_hist["prompt"][0] == ref_hist["prompt"][0]
        assert mine_hist["outputs"] == ref_hist["outputs"]
        assert mine_hist["status"]["status_str"] == ref_hist["status"]["status_str"]
        assert [m[0] for m in mine_hist["status"]["messages"]] == [m[0] for m in ref_hist["status"]["messages"]]
        for view in sc["get_view"]:
            resp = await self.request(view["request"])
            check_http(resp, view)
            for h in ("Content-Disposition", "Etag", "Last-Modified", "Accept-Ranges"):
                assert h.lower() in resp.headers
            info = png_info(resp.content)
            ref_png = view["response"]["png"]
            assert [info[k] for k in ("width", "height", "bit_depth", "color_type")] == [
                ref_png[k] for k in ("width", "height", "bit_depth", "color_type")
            ]
            assert sorted(info["text"]) == sorted(c["key"] for c in view["response"]["png_text_chunks"])


async def test_stand_in_replays_the_reference_capture(tmp_path):
    t = json.loads(TRANSCRIPT.read_text())
    app = create_app(base_dir=tmp_path, device="cpu", step_delay=0, load_delay=0)
    async with serve_app(app) as url, httpx.AsyncClient(timeout=10) as http:
        rp = Replayer(url, http)
        # a: plain GETs
        for name, ex in t["a_basic_gets"].items():
            if name == "get_object_info_all_summary":
                full = (await http.get(url + "/object_info")).json()
                for node in ("EmptyImage", "SaveImage", "ImageScale", "SaveImageWebsocket"):
                    assert node in full
                assert sorted(full["SaveImage"]) == ex["keys_of_SaveImage_entry"]
                continue
            resp = await rp.request(ex["request"])
            check_http(resp, ex)
            if name.startswith("get_object_info"):
                assert resp.json() == ex["response"]["body_json"]
        # b*: successful prompts, cache, websocket image output with and without preview metadata
        for name in (
            "b_success_prompt",
            "b2_success_prompt_repeat_cached",
            "b3_save_image_websocket_legacy_client",
            "b4_save_image_websocket_feature_flags_client",
        ):
            await rp.scenario(t[name])
        # c: invalid graphs (400 bodies must be identical) and the non-JSON 500
        for sc in t["c_invalid_graphs"].values():
            if "ws_url" in sc:
                await rp.scenario(sc)
            else:
                resp = await rp.request(sc["request"])
                check_http(resp, sc)
                assert resp.content == sc["response"]["body_text"].encode()
        # d: runtime failure -> execution_error, history status error
        await rp.scenario(t["d_execution_error"])
        # e: control endpoints
        e = t["e_control_endpoints"]
        for name in (
            "post_free",
            "post_interrupt_idle_no_body",
            "post_interrupt_idle_json_empty",
            "post_queue_clear",
            "post_queue_delete_unknown",
            "get_queue_after",
        ):
            check_http(await rp.request(e[name]["request"]), e[name])
        app.state.comfy.node_delay = 0.3  # make the slow graph slow enough to interrupt

        async def interrupt_targeted(pid: str) -> None:
            during = e["interrupt_running_prompt"]["during"]
            req = dict(during["post_interrupt_targeted_while_running"]["request"], json={"prompt_id": pid})
            check_http(await rp.request(req), during["post_interrupt_targeted_while_running"])
            ref_q = during["get_queue_while_running"]
            ref_pid = ref_q["response"]["body_json"]["queue_running"][0][1]
            check_http(await rp.request(ref_q["request"]), ref_q, {ref_pid: pid})

        await rp.scenario(e["interrupt_running_prompt"], during=interrupt_targeted)

        async def clear_pending(pid: str) -> None:
            during = e["queue_clear_with_pending"]["during"]
            for post in during["extra_posts"]:
                resp = await rp.request(post["request"])
                check_http(resp, post)
                assert resp.json()["number"] == post["response"]["body_json"]["number"]
            check_http(await rp.request(during["get_queue_with_pending"]["request"]), during["get_queue_with_pending"])
            pend = (await http.get(url + "/prompt")).json()
            assert pend == during["get_prompt_with_pending"]["response"]["body_json"]
            for step in ("post_queue_clear", "get_queue_after_clear", "post_interrupt_global"):
                check_http(await rp.request(during[step]["request"]), during[step])

        await rp.scenario(e["queue_clear_with_pending"], during=clear_pending)
        app.state.comfy.node_delay = 0
        # f: the /api prefix and misc
        f = t["f_api_prefix_and_misc"]
        await rp.scenario(f["api_prompt_success"])
        await rp.scenario(f["api_prompt_invalid"])
        check_http(await rp.request(f["api_get_queue"]["request"]), f["api_get_queue"])
        assert (await http.get(url + "/api/system_stats")).status_code == f["api_get_system_stats_status"]
        assert len((await http.get(url + "/api/history")).json()) == f["api_get_history_len"]
        assert len((await http.get(url + "/history")).json()) == f["get_history_len"]
        assert (await http.get(url + "/api/object_info/SaveImage")).json() == (
            await http.get(url + "/object_info/SaveImage")
        ).json()
        async with connect(url.replace("http", "ws") + "/api/ws?clientId=heldout-apiws") as ws:
            assert await ws.recv() == f["api_ws"]["first_frame"]
        for name in ("view_missing_file", "view_traversal", "post_history_clear", "get_history_after_clear"):
            check_http(await rp.request(f[name]["request"]), f[name])


FLUX = Path(__file__).resolve().parents[1] / "config" / "workflows" / "flux_schnell.json"


def flux_graph(width: int, height: int, steps: int = 4, prefix: str = "hero") -> dict:
    values = {
        "seed": 7,
        "steps": steps,
        "checkpoint": "flux1-schnell-fp8.safetensors",
        "width": width,
        "height": height,
        "prompt": "a lighthouse at dusk",
        "negative": "",
        "filename_prefix": prefix,
    }
    graph = json.loads(FLUX.read_text())
    for node in graph.values():
        for k, v in node["inputs"].items():
            if isinstance(v, str) and v.startswith("{{"):
                node["inputs"][k] = values[v.strip("{}")]
    return graph


async def run_prompt(url: str, graph: dict, client_id: str = "t1") -> tuple[dict, list[dict]]:
    async with connect(url.replace("http", "ws") + f"/ws?clientId={client_id}") as ws, httpx.AsyncClient() as http:
        await ws.recv()
        resp = await http.post(url + "/prompt", json={"prompt": graph, "client_id": client_id})
        body = resp.json()
        frames = []
        if resp.status_code == 200:
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                frames.append(msg)
                if msg["type"] == "executing" and msg["data"]["node"] is None:
                    break
        return {"status": resp.status_code, **body}, frames


async def test_flux_graph_writes_a_png_of_the_latent_size_with_one_progress_frame_per_step(tmp_path):
    async with serve_app(create_app(base_dir=tmp_path, step_delay=0, load_delay=0)) as url:
        post, frames = await run_prompt(url, flux_graph(320, 192, steps=4))
        progress = [f["data"]["value"] for f in frames if f["type"] == "progress"]
        assert progress == [1, 2, 3, 4]
        assert [f["type"] for f in frames][-3:] == ["execution_success", "status", "executing"]
        async with httpx.AsyncClient() as http:
            hist = (await http.get(f"{url}/history/{post['prompt_id']}")).json()[post["prompt_id"]]
            image = hist["outputs"]["9"]["images"][0]
            assert image == {"filename": "hero_00001_.png", "subfolder": "", "type": "output"}
            png = (await http.get(url + "/view", params=image)).content
        info = png_info(png)
        assert (info["width"], info["height"]) == (320, 192)
        assert json.loads(info["text"]["prompt"])["6"]["inputs"]["text"] == "a lighthouse at dusk"


async def test_unknown_checkpoint_fails_validation_naming_the_loader_node(tmp_path):
    graph = flux_graph(64, 64)
    graph["4"]["inputs"]["ckpt_name"] = "missing.safetensors"
    async with serve_app(create_app(base_dir=tmp_path)) as url:
        post, _ = await run_prompt(url, graph)
    assert post["status"] == 400
    assert post["error"]["type"] == "prompt_outputs_failed_validation"
    assert post["node_errors"]["4"]["class_type"] == "CheckpointLoaderSimple"
    assert post["node_errors"]["4"]["errors"][0]["type"] == "value_not_in_list"


async def test_injected_failure_sends_execution_error_and_records_an_error_history(tmp_path):
    app = create_app(base_dir=tmp_path, step_delay=0, load_delay=0, fail_class_type="KSampler")
    async with serve_app(app) as url:
        post, frames = await run_prompt(url, flux_graph(64, 64))
        async with httpx.AsyncClient() as http:
            hist = (await http.get(f"{url}/history/{post['prompt_id']}")).json()[post["prompt_id"]]
    types = [f["type"] for f in frames]
    assert "execution_success" not in types
    assert types[-3:] == ["execution_error", "status", "executing"]
    err = frames[-3]["data"]
    assert (err["node_id"], err["node_type"], err["exception_type"]) == ("3", "KSampler", "torch.OutOfMemoryError")
    assert hist["status"]["status_str"] == "error" and hist["status"]["completed"] is False
    assert hist["outputs"] == {}


async def test_models_load_lazily_on_first_prompt_and_unload_on_free(tmp_path):
    async with serve_app(create_app(base_dir=tmp_path, step_delay=0, load_delay=0.01)) as url:
        async with httpx.AsyncClient() as http:
            free0 = (await http.get(url + "/system_stats")).json()["devices"][0]["vram_free"]
            await run_prompt(url, flux_graph(64, 64))
            free1 = (await http.get(url + "/system_stats")).json()["devices"][0]["vram_free"]
            assert (await http.post(url + "/free", json={"unload_models": True})).content == b""
            free2 = (await http.get(url + "/system_stats")).json()["devices"][0]["vram_free"]
    assert free1 < free0 == free2
