"""hero_image renders through the ComfyUI stand-in: a real PNG of the asked size, errors naming the node."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.routing import WebSocketRoute

from hub.context import Context
from hub.errors import InvalidParams
from hub.sim import comfyui
from hub.sim.comfyui_png import png_info
from hub.sim.serve import serve_app
from skills.content.comfy_client import ComfyError
from tests.helpers_content import content_config, content_hub, stand_in
from tests.waiting import wait_until

FAST = {"step_delay": 0, "load_delay": 0}


async def image(hub, **params):
    return await hub.run_skill("hero_image", params, Context.new("cli"))


async def test_hero_image_saves_a_valid_png_of_the_asked_size_with_step_progress(tmp_path):
    async with (
        stand_in(comfyui, base_dir=tmp_path / "comfy", **FAST) as url,
        content_hub(content_config(tmp_path, comfyui=url)) as hub,
    ):
        progress = []
        handle = await hub.start_skill(
            "hero_image",
            {"prompt": "A GB10 box glowing at night", "width": 512, "height": 288, "seed": 42},
            Context.new("cli"),
        )
        handle.on_progress(progress.append)
        result = await handle.wait()
        events = await hub.store.db.execute_fetchall(
            "SELECT data FROM job_events WHERE job_id=? AND type='progress'", (handle.id,)
        )
    data = Path(result.path).read_bytes()
    info = png_info(data)
    assert (info["width"], info["height"]) == (512, 288) == (result.width, result.height)
    assert result.seed == 42 and result.size_bytes == len(data)
    assert Path(result.path).parent.name == handle.id  # the per-job artifacts dir
    assert json.loads(info["text"]["prompt"])["6"]["inputs"]["text"] == "A GB10 box glowing at night"
    assert [json.loads(e[0])["done"] for e in events] == [1, 2, 3, 4]


async def test_width_not_a_multiple_of_16_is_rejected_before_any_gpu_work(tmp_path):
    async with content_hub(content_config(tmp_path, comfyui="http://127.0.0.1:9")) as hub:
        with pytest.raises(InvalidParams, match="width"):
            await image(hub, prompt="a lighthouse", width=1000)


async def test_execution_error_names_the_node_and_its_type(tmp_path):
    async with (
        stand_in(comfyui, base_dir=tmp_path / "comfy", fail_class_type="VAEDecode", **FAST) as url,
        content_hub(content_config(tmp_path, comfyui=url)) as hub,
    ):
        with pytest.raises(ComfyError, match=r"node 8 \(VAEDecode\) failed: torch.OutOfMemoryError"):
            await image(hub, prompt="a lighthouse")


async def test_missing_checkpoint_is_rejected_naming_the_loader_node(tmp_path):
    async with (
        stand_in(comfyui, base_dir=tmp_path / "comfy", **FAST) as url,
        content_hub(content_config(tmp_path, comfyui=url, checkpoint="nope.safetensors")) as hub,
    ):
        with pytest.raises(ComfyError, match=r"node 4 \(CheckpointLoaderSimple\): Value not in list"):
            await image(hub, prompt="a lighthouse")


async def test_unknown_node_type_in_a_user_workflow_names_the_node(tmp_path):
    template = json.loads(Path("config/workflows/flux_schnell.json").read_text())
    template["8"]["class_type"] = "VAEDecodeTiledPlus"
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(template))
    async with (
        stand_in(comfyui, base_dir=tmp_path / "comfy", **FAST) as url,
        content_hub(content_config(tmp_path, comfyui=url, workflow=str(path))) as hub,
    ):
        with pytest.raises(ComfyError, match=r"node 8 \(VAEDecodeTiledPlus\).*does not exist"):
            await image(hub, prompt="a lighthouse")


async def test_split_flux_workflow_dropped_in_by_the_user_renders(tmp_path):
    split = {
        "1": {
            "class_type": "UNETLoader",
            "inputs": {"unet_name": "flux1-schnell.safetensors", "weight_dtype": "fp8_e4m3fn"},
        },
        "2": {
            "class_type": "DualCLIPLoader",
            "inputs": {
                "clip_name1": "t5xxl_fp8_e4m3fn.safetensors",
                "clip_name2": "clip_l.safetensors",
                "type": "flux",
            },
        },
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": "ae.safetensors"}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{prompt}}", "clip": ["2", 0]}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["2", 0]}},
        "6": {
            "class_type": "EmptySD3LatentImage",
            "inputs": {"width": "{{width}}", "height": "{{height}}", "batch_size": 1},
        },
        "7": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["1", 0],
                "seed": "{{seed}}",
                "steps": "{{steps}}",
                "cfg": 1.0,
                "sampler_name": "euler",
                "scheduler": "simple",
                "denoise": 1.0,
                "positive": ["4", 0],
                "negative": ["5", 0],
                "latent_image": ["6", 0],
            },
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["7", 0], "vae": ["3", 0]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "my/{{filename_prefix}}"}},
    }
    path = tmp_path / "split.json"
    path.write_text(json.dumps(split))
    async with (
        stand_in(comfyui, base_dir=tmp_path / "comfy", **FAST) as url,
        content_hub(content_config(tmp_path, comfyui=url, workflow=str(path))) as hub,
    ):
        result = await image(hub, prompt="a lighthouse", width=256, height=256, steps=2)
    assert png_info(Path(result.path).read_bytes())["width"] == 256


async def test_without_a_websocket_the_client_polls_history(tmp_path):
    app = comfyui.create_app(base_dir=tmp_path / "comfy", **FAST)
    app.router.routes[:] = [r for r in app.router.routes if not isinstance(r, WebSocketRoute)]
    async with serve_app(app) as url, content_hub(content_config(tmp_path, comfyui=url)) as hub:
        result = await image(hub, prompt="a quiet harbour", width=128, height=64)
    assert (result.width, result.height) == (128, 64)


async def test_cancelling_the_job_interrupts_the_prompt_on_comfyui(tmp_path):
    import asyncio

    import httpx

    from hub.errors import JobCancelled

    async with (
        stand_in(comfyui, base_dir=tmp_path / "comfy", step_delay=0.3, load_delay=0) as url,
        content_hub(content_config(tmp_path, comfyui=url)) as hub,
    ):
        handle = await hub.start_skill("hero_image", {"prompt": "a slow picture", "steps": 20}, Context.new("cli"))
        started = asyncio.Event()
        handle.on_progress(lambda p: started.set())
        await asyncio.wait_for(started.wait(), 10)
        await handle.cancel()
        with pytest.raises(JobCancelled):
            await handle.wait()
        async with httpx.AsyncClient() as http:
            async def history_entry() -> dict:
                return (await http.get(url + "/history")).json()

            history = await wait_until(history_entry, what="the interrupted prompt in ComfyUI's history")
    (entry,) = history.values()
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"
    assert entry["status"]["messages"][-1][1]["node_type"] == "KSampler"


async def test_sovhub_bench_content_reports_image_overhead_and_podcast_speed():
    from hub.bench.content import run

    report = await run(images=2, width=128, height=128, paragraphs=3)
    assert report["hero_image"]["runs"] == 2 and report["hero_image"]["overhead_ms_p50"] is not None
    assert report["podcast"]["chunks"] >= 1 and abs(report["podcast"]["duration_minus_chunks_s"]) < 0.1
    assert abs(report["podcast"]["loudness_lufs"] + 16) <= 0.5 and report["podcast"]["true_peak_dbtp"] <= -1
