"""`sovhub bench content`: the content skills against the stand-ins, end to end through the hub.

hero_image: N renders through the hub (job row, lease, template, WebSocket, /view, artifact) next
to N direct ComfyClient runs of the same graph, interleaved; the hub's overhead is the per-pair
difference. render_podcast: one article of P paragraphs (no LLM rewrite), seconds of audio per
second of work, how far ffprobe's duration is from the sum of the chunks, and the episode's
loudness and true peak as ebur128 measures the file.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from hub.config.model import HubConfig
from hub.context import Context
from hub.core import Hub
from hub.registry import SkillRegistry
from hub.sim import comfyui, tts
from hub.sim.serve import serve_app
from skills.content.comfy_client import ComfyClient
from skills.content.workflow import fill, load_template


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 2)


def _article(paragraphs: int) -> str:
    return "# Bench episode\n\n" + "\n\n".join(
        f"Paragraph {i} talks about unified memory, model swaps and the queue, one sentence at a time. "
        f"It has a second sentence, number {i}."
        for i in range(paragraphs)
    )


async def run(
    images: int = 10, width: int = 1024, height: int = 576, paragraphs: int = 30, engine: str = "espeak"
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="sovhub-bench-content-"))
    async with (
        serve_app(comfyui.create_app(base_dir=tmp / "comfy", step_delay=0, load_delay=0)) as comfy,
        serve_app(tts.create_app()) as speech,
    ):
        residents = {"memory_guard": {"enabled": False}}
        for name, kind, url, probe in (
            ("comfyui", "image", comfy, "/system_stats"),
            ("vllm-omni", "tts", speech, "/v1/models"),
        ):
            residents[name] = {
                "kind": kind,
                "memory_gb": 30,
                "base_url": url,
                "ready": {"url": url + probe},
                "driver": {"type": "process", "command": ["true"]},
            }
        config = HubConfig.model_validate(
            {
                "storage": {"data_dir": str(tmp / "data")},
                "residents": residents,
                "skills": {"content": {"tts_engine": engine}},
            }
        )
        registry = SkillRegistry()
        registry.discover("skills.content")
        hub = await Hub.start(config, skills=registry, components=(), resume_jobs=False)
        try:
            hub_s, direct_s = [], []
            client = ComfyClient(comfy)
            template = load_template(None)
            for i in range(images):
                graph = fill(
                    template,
                    {
                        "prompt": f"bench {i}",
                        "negative": "",
                        "width": width,
                        "height": height,
                        "seed": i,
                        "steps": 4,
                        "checkpoint": config.skills.content.checkpoint,
                        "filename_prefix": f"direct/{i}",
                    },
                )
                t0 = time.perf_counter()
                await client.run(graph)
                t1 = time.perf_counter()
                await hub.run_skill(
                    "hero_image",
                    {"prompt": f"bench {i}", "width": width, "height": height, "seed": i},
                    Context.new("cli"),
                )
                t2 = time.perf_counter()
                direct_s.append(t1 - t0)
                hub_s.append(t2 - t1)
            overhead = [h - d for h, d in zip(hub_s, direct_s, strict=True)]
            t0 = time.perf_counter()
            episode = await hub.run_skill(
                "render_podcast", {"article": _article(paragraphs), "rewrite": False}, Context.new("cli")
            )
            podcast_s = time.perf_counter() - t0
        finally:
            await hub.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    return {
        "hero_image": {
            "runs": images,
            "size": f"{width}x{height}",
            "hub_ms_p50": _pct(hub_s, 0.5),
            "direct_ms_p50": _pct(direct_s, 0.5),
            "overhead_ms_p50": _pct(overhead, 0.5),
            "overhead_ms_p95": _pct(overhead, 0.95),
            "overhead_ms_mean": round(statistics.mean(overhead) * 1000, 2),
        },
        "podcast": {
            "engine": engine,
            "chunks": episode.chunks,
            "audio_s": episode.duration_s,
            "wall_s": round(podcast_s, 2),
            "realtime_factor": round(episode.duration_s / podcast_s, 1),
            "duration_minus_chunks_s": round(episode.duration_s - sum(episode.chunk_seconds), 3),
            "size_bytes": episode.size_bytes,
            "loudness_lufs": episode.loudness_lufs,
            "true_peak_dbtp": episode.true_peak_dbtp,
        },
    }
