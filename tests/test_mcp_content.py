"""Artifacts reach MCP clients as content: images, audio, resource links readable with the right token."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import wave
from pathlib import Path
from typing import Any

from fastmcp import Client
from mcp.shared.exceptions import MCPError
from PIL import Image
from pydantic import BaseModel, Field

from bridges.mcp.bridge import MCPBridge
from bridges.mcp.content import AUDIO_INLINE_MAX, IMAGE_INLINE_MAX, PREVIEW_SIDE
from hub.config.model import HubConfig
from hub.core import Hub
from hub.jobs import SkillRun
from hub.registry import Permission, SkillRegistry, skill
from hub.sim import comfyui
from tests.helpers_content import content_config, stand_in
from tests.test_mcp_http import OWNER, TOKENS, WRITER

READER_2 = "second-writer-0123456789abcdef"


class MakeParams(BaseModel):
    kind: str = Field(pattern="^(big_image|small_audio|big_audio|episode|outside)$")


class Made(BaseModel):
    path: str
    note: str = "made"


def _wav(seconds: float, rate: int = 8000, channels: int = 1) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(os.urandom(int(seconds * rate) * 2 * channels))
    return out.getvalue()


@skill(name="make_artifact", description="Write a test artifact", params=MakeParams, result=Made,
       permission=Permission.write)
async def make_artifact(run: SkillRun, params: MakeParams) -> Made:
    if params.kind == "big_image":
        path = run.artifacts_dir / "noise.png"
        Image.frombytes("RGB", (1400, 1000), os.urandom(1400 * 1000 * 3)).save(path)
    elif params.kind == "episode":  # like render_podcast with a blog: the episode goes into the site
        content = run.config.skills.content
        path = content.blog_dir / content.podcast_subdir / "episode-1.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_wav(1))
    elif params.kind == "outside":
        path = run.config.storage.db_path  # a file on the hub's disk that is nobody's artifact
    elif params.kind == "small_audio":
        path = run.artifacts_dir / "hello.wav"
        path.write_bytes(_wav(2))
    else:
        path = run.artifacts_dir / "long.wav"
        path.write_bytes(_wav(20, rate=44100, channels=2))
    return Made(path=str(path))


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, comfy_url: str = "http://127.0.0.1:9"):
    registry = SkillRegistry()
    registry.discover("skills.content")
    registry.register(make_artifact)
    settings = content_config(tmp_path, comfyui=comfy_url, blog_dir=str(tmp_path / "blog"))
    settings["mcp"] = {"port": 0, "tokens": [*TOKENS, {"name": "other", "token": READER_2, "role": "write"}]}
    hub = await Hub.start(HubConfig.model_validate(settings), skills=registry, components=(), resume_jobs=False)
    bridge = MCPBridge(hub)
    try:
        await bridge.start()
        yield hub, bridge
    finally:
        await bridge.stop()
        await hub.stop()


def by_type(result) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for block in result.content:
        out.setdefault(block.type, []).append(block)
    return out


async def read_blob(client: Client, uri: str) -> bytes:
    (item,) = await client.read_resource(uri)
    return base64.b64decode(item.blob)


async def test_hero_image_comes_back_as_an_image_and_a_link_only_its_caller_or_the_owner_can_read(tmp_path):
    async with stand_in(comfyui, base_dir=tmp_path / "comfy", step_delay=0, load_delay=0) as url:
        async with serving(tmp_path, url) as (_, bridge), Client(bridge.url, auth=WRITER) as client:
            result = await client.call_tool("hero_image", {"prompt": "a lighthouse at dusk", "width": 256,
                                                           "height": 256, "seed": 7})
            on_disk = Path(result.structured_content["path"]).read_bytes()
            blocks = by_type(result)
            (image,) = blocks["image"]
            assert image.mime_type == "image/png" and base64.b64decode(image.data) == on_disk
            (link,) = blocks["resource_link"]
            job_id = result.meta["sovhub"]["job_id"]
            assert link.uri == f"sovhub://artifacts/{job_id}/{Path(result.structured_content['path']).name}"
            assert link.mime_type == "image/png" and link.size == len(on_disk)
            assert result.structured_content["seed"] == 7  # the structured result is unchanged
            assert await read_blob(client, str(link.uri)) == on_disk
            templates = await client.list_resource_templates()
            assert [t.uri_template for t in templates] == ["sovhub://artifacts/{job_id}/{filename}"]
            async with Client(bridge.url, auth=READER_2) as other:
                for uri in (str(link.uri), f"sovhub://artifacts/{job_id}/..%2F..%2Fhub.db"):
                    try:
                        await other.read_resource(uri)
                    except MCPError as exc:
                        assert "no artifact" in str(exc) or "Resource not found" in str(exc)
                    else:
                        raise AssertionError(f"another writer read {uri}")
            async with Client(bridge.url, auth=OWNER) as owner:
                assert await read_blob(owner, str(link.uri)) == on_disk
                try:
                    await owner.read_resource(f"sovhub://artifacts/{job_id}/..%2F..%2Fhub.db")
                except MCPError as exc:
                    assert "no artifact" in str(exc) or "Resource not found" in str(exc)
                else:
                    raise AssertionError("a path outside the job's artifacts was read")


async def test_a_large_image_gets_a_small_webp_preview_and_large_audio_only_a_link(tmp_path):
    async with serving(tmp_path) as (_, bridge), Client(bridge.url, auth=WRITER) as client:
        big = await client.call_tool("make_artifact", {"kind": "big_image"})
        full = Path(big.structured_content["path"]).read_bytes()
        assert len(full) > IMAGE_INLINE_MAX
        (preview,) = by_type(big)["image"]
        small = base64.b64decode(preview.data)
        with Image.open(io.BytesIO(small)) as shown:
            assert shown.format == "WEBP" and max(shown.size) == PREVIEW_SIDE
            assert abs(shown.size[0] / shown.size[1] - 1400 / 1000) < 0.01
        assert preview.meta["sovhub"]["preview"] is True
        (link,) = by_type(big)["resource_link"]
        assert await read_blob(client, str(link.uri)) == full

        short = await client.call_tool("make_artifact", {"kind": "small_audio"})
        (audio,) = by_type(short)["audio"]
        wav = Path(short.structured_content["path"]).read_bytes()
        assert audio.mime_type == "audio/wav" and base64.b64decode(audio.data) == wav
        with wave.open(io.BytesIO(base64.b64decode(audio.data))) as w:
            assert w.getnframes() == 2 * 8000

        long = await client.call_tool("make_artifact", {"kind": "big_audio"})
        blocks = by_type(long)
        assert "audio" not in blocks and Path(long.structured_content["path"]).stat().st_size > AUDIO_INLINE_MAX
        assert blocks["resource_link"][0].mime_type == "audio/wav"
        assert blocks["text"] and long.structured_content["note"] == "made"


async def test_an_episode_published_into_the_blog_reaches_the_client_and_other_paths_never_do(tmp_path):
    async with serving(tmp_path) as (_, bridge), Client(bridge.url, auth=WRITER) as client:
        episode = await client.call_tool("make_artifact", {"kind": "episode"})
        on_disk = Path(episode.structured_content["path"])
        assert on_disk.is_relative_to(tmp_path / "blog")
        (audio,) = by_type(episode)["audio"]
        (link,) = by_type(episode)["resource_link"]
        assert base64.b64decode(audio.data) == on_disk.read_bytes()
        assert await read_blob(client, str(link.uri)) == on_disk.read_bytes()
        outside = await client.call_tool("make_artifact", {"kind": "outside"})
        assert set(by_type(outside)) == {"text"}  # the DB path is named, never handed out
