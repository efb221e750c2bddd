"""hero_image: render a picture with FLUX.1-schnell on ComfyUI, from the workflow template."""

from __future__ import annotations

import random
import struct

from pydantic import BaseModel, Field

from hub.errors import HubError
from hub.jobs import SkillRun
from hub.registry import Permission, skill
from skills.content.comfy_client import ComfyClient
from skills.content.slugs import slugify
from skills.content.workflow import fill, load_template

RESIDENT = "comfyui"


class HeroImageParams(BaseModel):
    prompt: str = Field(min_length=3, max_length=2000, description="What to draw")
    width: int | None = Field(None, ge=64, le=2048, multiple_of=16, description="Pixels; default from config")
    height: int | None = Field(None, ge=64, le=2048, multiple_of=16, description="Pixels; default from config")
    seed: int | None = Field(None, ge=0, le=2**53 - 1, description="Same seed + prompt = same image (0 to 2^53-1)")
    steps: int = Field(4, ge=1, le=50, description="Sampler steps (FLUX.1-schnell needs 4)")
    name: str | None = Field(None, max_length=80, description="File name stem; default from the prompt")


class HeroImageResult(BaseModel):
    path: str
    width: int
    height: int
    seed: int
    size_bytes: int
    node: str = Field(description="the workflow node that saved the image")


def png_size(data: bytes) -> tuple[int, int]:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise HubError("ComfyUI returned a file that is not a PNG image")
    return struct.unpack(">II", data[16:24])


async def render(
    run: SkillRun,
    base_url: str,
    params: HeroImageParams,
    stage: tuple[float, float, float] | None = None,
) -> HeroImageResult:
    """The pipeline step; publish_article calls it under its own comfyui lease and stages the file."""
    cfg = run.config.skills.content
    width = params.width or cfg.image_width
    height = params.height or cfg.image_height
    seed = params.seed if params.seed is not None else random.randrange(2**32)
    stem = slugify(params.name or params.prompt, fallback="image")
    graph = fill(
        load_template(cfg.workflow),
        {
            "prompt": params.prompt,
            "negative": cfg.negative_prompt,
            "width": width,
            "height": height,
            "seed": seed,
            "steps": params.steps,
            "checkpoint": cfg.checkpoint,
            "filename_prefix": f"sovhub/{stem}",
        },
    )

    async def on_progress(value: int, maximum: int, node_type: str) -> None:
        if stage is None:
            await run.progress(value, maximum, f"{node_type}: step {value}/{maximum}")
        else:  # one stage of a longer pipeline: (first step, steps it spans, pipeline total)
            base, span, total = stage
            await run.progress(base + span * value / max(1, maximum), total, f"hero image: step {value}/{maximum}")

    client = ComfyClient(base_url, timeout=cfg.image_timeout_s)
    images = await client.run(graph, on_progress)
    image = images[0]
    actual_w, actual_h = png_size(image.data)
    path = run.artifacts_dir / f"{stem}.png"
    path.write_bytes(image.data)
    await run.log("image saved", path=str(path), width=actual_w, height=actual_h, seed=seed)
    return HeroImageResult(
        path=str(path),
        width=actual_w,
        height=actual_h,
        seed=seed,
        size_bytes=len(image.data),
        node=image.node_id,
    )


def resident_url(run: SkillRun, name: str) -> str:
    """The URL of the lease the job holds for `name` (the scheduler's word), else the configured one."""
    if run.lease is not None and run.lease.resident == name and run.lease.base_url:
        return run.lease.base_url
    server = run.config.residents.servers.get(name)
    if server is None:
        raise HubError(f"no resident named {name!r} is configured (residents.{name}.base_url)")
    return server.base_url


@skill(
    name="hero_image",
    description="Render an image with FLUX.1-schnell on the local GPU (ComfyUI) and save it as a PNG artifact",
    params=HeroImageParams,
    result=HeroImageResult,
    resident=RESIDENT,
    permission=Permission.write,
    timeout_s=900,
    long_running=True,
    est_seconds=20,
    command="image",
)
async def hero_image(run: SkillRun, params: HeroImageParams) -> HeroImageResult:
    return await render(run, resident_url(run, RESIDENT), params)
