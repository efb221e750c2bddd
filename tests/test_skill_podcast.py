"""render_podcast: local-LLM script, TTS chunks (vllm-omni stand-in or espeak-ng), ffmpeg loudnorm + tags."""

from __future__ import annotations

import pytest

from hub.context import Context
from hub.errors import HubError, InvalidParams
from hub.sim import sglang, tts
from skills.content.audio import probe
from skills.content.script import chunk_script, clean_script
from tests.helpers_content import content_config, content_hub, stand_in
from tests.test_skill_podcast_audio import ebur128
from tests.waiting import wait_until

ARTICLE = """---
title: Forty tokens a second under the desk
description: Speculative decoding on the GB10
pubDate: 2026-11-20
---
# Why EAGLE matters

With EAGLE we measured **35-41 tok/s**, against 12.5 tok/s without it. The weights take 66 GiB.

```bash
sglang serve --speculative-algorithm EAGLE
```

- Cold starts take 30-120 s.
- See [the docs](https://example.com/docs).
"""

MODEL_SCRIPT = """# Forty tokens a second under the desk

Welcome. Today: **speculative decoding** on the GB10, and why it gives 35-41 tok/s.

```
this code must never be read out
```

The model weights take 66 GiB, and a cold start takes 30-120 s. Thanks for listening.
"""


def long_article(sentences: int) -> str:
    return "\n\n".join(
        f"Paragraph {i} says something careful about unified memory and model swaps, "
        f"one sentence at a time, number {i}."
        for i in range(sentences)
    )


async def test_podcast_is_a_tagged_mp3_whose_duration_matches_the_sum_of_its_chunks(tmp_path):
    blog = tmp_path / "blog"
    async with (
        stand_in(sglang, script=[{"text": MODEL_SCRIPT}]) as llm,
        content_hub(content_config(tmp_path, sglang=llm, blog_dir=str(blog), tts_chunk_chars=120)) as hub,
    ):
        result = await hub.run_skill("render_podcast", {"article": ARTICLE}, Context.new("cli"))
    assert result.path == str(blog / "public" / "podcasts" / "forty-tokens-a-second-under-the-desk.mp3")
    info = await probe(blog / "public" / "podcasts" / "forty-tokens-a-second-under-the-desk.mp3")
    assert (info["codec"], info["sample_rate"], info["channels"]) == ("mp3", 24000, 1)
    assert info["tags"]["title"] == "Forty tokens a second under the desk"
    assert info["tags"]["artist"] == "sovhub"
    assert result.engine == "espeak" and result.chunks == len(result.chunk_seconds) >= 2
    assert result.duration_s == pytest.approx(sum(result.chunk_seconds), abs=0.1)
    assert result.size_bytes == (blog / "public" / "podcasts" / f"{result.path.split('/')[-1]}").stat().st_size
    integrated, peak = ebur128(blog / "public" / "podcasts" / "forty-tokens-a-second-under-the-desk.mp3")
    assert abs(integrated + 16) <= 0.5 and peak <= -1.0  # measured by ffmpeg, not by the skill
    assert (result.loudness_lufs, result.true_peak_dbtp) == (integrated, peak)


async def test_voxtral_engine_speaks_every_chunk_through_the_vllm_omni_stand_in(tmp_path):
    async with (
        stand_in(sglang, script=[{"text": long_article(12)}]) as llm,
        stand_in(tts) as speech,
        content_hub(
            content_config(tmp_path, sglang=llm, tts=speech, tts_engine="vllm-omni", tts_chunk_chars=200)
        ) as hub,
    ):
        result = await hub.run_skill(
            "render_podcast",
            {"article": long_article(12), "format": "opus", "voice": "neutral_female"},
            Context.new("cli"),
        )
    info = await probe(tmp_path / result.path)
    assert info["codec"] == "opus" and result.engine == "vllm-omni"
    assert result.chunks >= 6
    assert result.duration_s == pytest.approx(sum(result.chunk_seconds), abs=0.1)


async def test_an_unknown_voice_names_the_voices_the_speech_server_has(tmp_path):
    async with (
        stand_in(tts) as speech,
        content_hub(content_config(tmp_path, tts=speech, tts_engine="vllm-omni")) as hub,
    ):
        with pytest.raises(HubError, match=r"unknown voice 'pirate'.*casual_female"):
            await hub.run_skill(
                "render_podcast", {"article": ARTICLE, "voice": "pirate", "rewrite": False}, Context.new("cli")
            )


async def test_without_the_model_the_article_itself_is_cleaned_and_read(tmp_path):
    async with content_hub(content_config(tmp_path)) as hub:
        result = await hub.run_skill("render_podcast", {"article": ARTICLE, "rewrite": False}, Context.new("cli"))
    assert result.title == "Forty tokens a second under the desk"
    assert result.duration_s > 1


async def test_an_article_named_by_slug_is_read_from_the_blog_and_paths_stay_inside_it(tmp_path):
    blog = tmp_path / "blog"
    (blog / "src" / "content" / "blog").mkdir(parents=True)
    (blog / "src" / "content" / "blog" / "gb10-notes.md").write_text(ARTICLE)
    (tmp_path / "secret.md").write_text("# private\n\nnotes")
    async with content_hub(content_config(tmp_path, blog_dir=str(blog))) as hub:
        result = await hub.run_skill("render_podcast", {"article": "gb10-notes", "rewrite": False}, Context.new("cli"))
        assert result.path == str(blog / "public" / "podcasts" / "gb10-notes.mp3")
        assert result.title == "Forty tokens a second under the desk"
        with pytest.raises(HubError, match="outside the blog"):
            await hub.run_skill("render_podcast", {"article": "../../../../secret.md"}, Context.new("cli"))
        with pytest.raises(HubError, match="no article 'no-such-post'"):
            await hub.run_skill("render_podcast", {"article": "no-such-post"}, Context.new("cli"))
        with pytest.raises(InvalidParams, match="article"):
            await hub.run_skill("render_podcast", {}, Context.new("cli"))


def test_spoken_script_has_no_markdown_no_code_and_spelled_out_units():
    script = clean_script(MODEL_SCRIPT)
    for bad in ("#", "**", "```", "never be read", "tok/s", "GiB", "-41"):
        assert bad not in script
    assert "35 to 41 tokens per second" in script
    assert "66 gibibytes" in script and "30 to 120 seconds" in script


def test_a_long_article_is_cut_into_sentence_bounded_chunks_within_the_limit():
    text = clean_script(long_article(40))
    chunks = chunk_script(text, 250)
    assert len(chunks) > 10 and all(len(c) <= 250 for c in chunks)
    assert all(c.endswith(".") for c in chunks)  # every cut falls between sentences
    assert " ".join(chunks).split() == text.split()  # nothing lost, nothing added
    run_on = "word " * 300 + "end."  # one sentence longer than the limit: cut between words
    pieces = chunk_script(run_on, 250)
    assert all(len(c) <= 250 for c in pieces) and " ".join(pieces).split() == run_on.split()


async def test_podcast_pipeline_through_the_real_scheduler_swaps_llm_then_tts(tmp_path):
    from hub.gpu.runtime import ResidentScheduler
    from hub.sim.serve import free_port
    from tests.helpers_content import process_residents, sim_process

    ports = {"sglang": free_port(), "vllm-omni": free_port()}
    urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    config = content_config(tmp_path, tts_engine="vllm-omni", blog_dir=str(tmp_path / "blog"))
    config["llm"]["local"]["base_url"] = urls["sglang"] + "/v1"
    config["residents"] = process_residents(
        {
            "sglang": (
                "llm",
                urls["sglang"],
                "/health",
                sim_process("sglang", ports["sglang"], script=[{"text": MODEL_SCRIPT}]),
            ),
            "vllm-omni": ("tts", urls["vllm-omni"], "/v1/models", sim_process("tts", ports["vllm-omni"])),
        }
    )
    swaps: list[tuple[str, str]] = []
    async with content_hub(config, components=("hub.gpu.component",)) as hub:
        assert isinstance(hub.gpu, ResidentScheduler)
        hub.bus.listen(
            "*",
            lambda e: (
                swaps.append((e.type, e.data.get("resident", ""))) if e.type in ("gpu_ready", "gpu_stopped") else None
            ),
        )
        try:
            result = await hub.run_skill("render_podcast", {"article": ARTICLE}, Context.new("cron"))
            job = (await hub.jobs.list(1))[0]
            leases = [
                (e["type"], e["data"].get("resident"))
                for e in await hub.jobs.events(job.id)
                if e["type"].startswith("lease")
            ]
        finally:
            for driver in hub.gpu.drivers.values():
                await driver.stop(5)
    assert result.engine == "vllm-omni" and result.duration_s > 1
    assert leases == [
        ("lease_wait", "sglang"),
        ("lease_granted", "sglang"),
        ("lease_wait", "vllm-omni"),
        ("lease_granted", "vllm-omni"),
    ]
    ready = [r for kind, r in swaps if kind == "gpu_ready"]
    assert ready[-1] == "vllm-omni" and ("gpu_stopped", "sglang") in swaps  # one resident at a time


async def test_a_chat_gets_the_gpu_in_the_middle_of_a_podcast_and_no_chunk_is_spoken_twice(tmp_path):
    """The yield rule end to end: the podcast's TTS lease checkpoints after every chunk; a chat
    that would miss its bound behind the episode gets the LLM in the middle of it, and the
    rendering resumes on the TTS server where it stopped (every chunk once in the episode)."""
    import asyncio

    from hub.sim.serve import free_port
    from tests.helpers_content import process_residents, sim_process

    ports = {"sglang": free_port(), "vllm-omni": free_port()}
    urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    config = content_config(tmp_path, tts_engine="vllm-omni", blog_dir=str(tmp_path / "blog"))
    config["llm"]["local"]["base_url"] = urls["sglang"] + "/v1"
    config["residents"] = process_residents({
        "sglang": ("llm", urls["sglang"], "/health", sim_process("sglang", ports["sglang"])),
        "vllm-omni": ("tts", urls["vllm-omni"], "/v1/models", sim_process("tts", ports["vllm-omni"], rtf=0.04)),
    })
    config["residents"].update(max_wait_s={"interactive": 10, "skill": 600, "scheduled": 600},
                               min_slice_s=0.5, conversation_s=0)
    article = long_article(30)
    events: list[tuple[str, dict]] = []
    async with content_hub(config, components=("hub.gpu.component",)) as hub:
        hub.bus.listen("*", lambda e: events.append((e.type, dict(e.data))) if e.type.startswith("gpu_") else None)
        try:
            pod = asyncio.create_task(hub.run_skill("render_podcast", {"article": article, "rewrite": False},
                                                    Context.new("cron")))
            await wait_until(lambda: any(k == "gpu_started" and d.get("resident") == "vllm-omni" for k, d in events),
                             timeout=30, what="the episode being spoken")
            await asyncio.sleep(0.3)  # not a wait for a condition: the chat arrives a few chunks into the episode
            async with hub.gpu.lease("sglang", job_id="chat", context=Context.new("matrix"),
                                     job_class="interactive", est_seconds=1):
                during = not pod.done()
            result = await asyncio.wait_for(pod, 120)
        finally:
            for driver in hub.gpu.drivers.values():
                await driver.stop(5)
    assert during  # the chat ran while the episode was still being rendered
    kinds = [k for k, _ in events]
    assert "gpu_yield_asked" in kinds and "gpu_yielded" in kinds
    assert kinds.index("gpu_yielded") < max(i for i, (k, d) in enumerate(events)
                                            if k == "gpu_started" and d.get("resident") == "vllm-omni")
    chunks = chunk_script(clean_script(article), hub.config.skills.content.tts_chunk_chars)
    assert result.chunks == len(chunks) and result.duration_s > 1  # each chunk spoken once
    assert abs(result.duration_s - sum(result.chunk_seconds)) < 0.25
