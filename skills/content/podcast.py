"""render_podcast: article -> spoken script (local LLM) -> speech chunks (TTS) -> tagged mp3/opus.

The LLM step and the TTS step form one pipeline: the script step declares `then="vllm-omni"` so the
scheduler keeps the two leases adjacent on the GPU. The TTS lease renders every chunk and declares a
checkpoint after each: when a chat would otherwise miss its bound behind a long episode, the
scheduler asks the lease to yield there, and the rendering resumes with the next chunk once the
TTS server is back (finished chunks are kept, never spoken twice).
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from hub.errors import HubError
from hub.jobs import SkillRun
from hub.registry import Permission, skill
from skills.content.audio import EspeakEngine, VllmOmniEngine, encode_episode, pcm_seconds, probe, synth_checked
from skills.content.hero_image import resident_url
from skills.content.llm import local_complete
from skills.content.script import SCRIPT_SYSTEM, chunk_script, clean_script, split_frontmatter
from skills.content.slugs import slugify

log = logging.getLogger(__name__)

TTS_RESIDENT = "vllm-omni"
TTS_CHUNK_EST_S = 2.0  # the declared work of one speech chunk (the lease's estimate and checkpoint spacing)


class PodcastParams(BaseModel):
    article: str = Field(
        min_length=1,
        description="The article as markdown, or the slug or path of an article "
        "in the blog (e.g. my-post, my-post.md, /srv/blog/src/content/blog/my-post.md)",
    )
    voice: str | None = Field(None, description="TTS voice preset, e.g. casual_male; default from config")
    format: Literal["mp3", "opus"] | None = Field(None, description="default from config (mp3)")
    title: str | None = Field(None, max_length=200, description="Episode title; default: the article's")
    rewrite: bool = Field(True, description="Let the local model write the spoken script (else strip markdown)")


class PodcastResult(BaseModel):
    path: str
    title: str
    duration_s: float
    size_bytes: int
    format: str
    voice: str
    engine: str
    chunks: int
    chunk_seconds: list[float]
    script_chars: int
    loudness_lufs: float = Field(description="integrated loudness of the file, measured by ffmpeg ebur128")
    true_peak_dbtp: float = Field(description="true peak of the file, measured by ffmpeg ebur128")


def is_reference(text: str) -> bool:
    """A slug or a path, not an article: one line without spaces."""
    text = text.strip()
    return bool(text) and len(text) < 1024 and not any(c.isspace() for c in text)


def read_article(run: SkillRun, article: str) -> tuple[str, str]:
    """(text, file stem) of the article; a reference must name a file inside the configured blog."""
    if not is_reference(article):
        return article, ""
    ref = article.strip()
    cfg = run.config.skills.content
    if cfg.blog_dir is None:
        raise HubError(
            f"{ref!r} looks like an article name, but no blog is configured "
            "(skills.content.blog_dir); pass the article text instead"
        )
    blog = cfg.blog_dir.expanduser().resolve()
    content = blog / cfg.content_subdir
    raw = Path(ref).expanduser()
    bases = [raw] if raw.is_absolute() else [content / ref, blog / ref]
    candidates = [
        c
        for b in bases
        for c in (b, b.with_name(b.name + ".md"), b.with_name(b.name + ".mdx"), b / "index.md", b / "index.mdx")
    ]
    for path in (c.resolve() for c in candidates):
        if not path.is_relative_to(blog):
            raise HubError(f"{ref} is outside the blog at {blog}")
        if path.is_file():
            return path.read_text(), path.parent.name if path.stem == "index" else path.stem
    raise HubError(f"no article {ref!r} in {content}")


def episode_title(params: PodcastParams, text: str) -> str:
    meta, body = split_frontmatter(text)
    if params.title:
        return params.title
    if isinstance(meta.get("title"), str) and meta["title"].strip():
        return meta["title"].strip()
    heading = re.search(r"^#\s+(.+)$", body, re.M)
    return heading.group(1).strip() if heading else "Episode"


PARTIAL = ".partial"
LEFTOVER_AGE_S = 120.0  # a partial this old whose job is not running here was left by a crash


def remove_leftovers(out_dir: Path, run: SkillRun) -> list[Path]:
    """Delete hidden `.<episode>.<job id>.partial` files a crash during encoding left behind.

    A `finally` cannot run under kill -9, so each run sweeps its output folder: a partial whose job
    is not running in this hub and that nobody has written to for a while is removed.
    """
    removed = []
    now = time.time()
    active = set(run.hub.jobs.active)
    for path in out_dir.glob(f".*{PARTIAL}"):
        job_id = path.name[: -len(PARTIAL)].rsplit(".", 1)[-1]
        try:
            stale = job_id not in active and now - path.stat().st_mtime > LEFTOVER_AGE_S
            if stale:
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    if removed:
        log.info("removed %d unfinished episode file(s) left by an interrupted run: %s", len(removed),
                 ", ".join(p.name for p in removed))
    return removed


@skill(
    name="render_podcast",
    description="Turn an article into a podcast episode (local LLM script, "
    "Voxtral TTS or espeak-ng), loudness-normalised and tagged, saved in the blog's podcast dir",
    params=PodcastParams,
    result=PodcastResult,
    permission=Permission.write,
    timeout_s=3600,
    long_running=True,
    est_seconds=180,
    command="podcast",
)
async def render_podcast(run: SkillRun, params: PodcastParams) -> PodcastResult:
    cfg = run.config.skills.content
    voice = params.voice or cfg.voice
    fmt = params.format or cfg.podcast_format
    text, stem = read_article(run, params.article)
    title = episode_title(params, text)
    use_gpu_tts = cfg.tts_engine == "vllm-omni"
    engine = (
        VllmOmniEngine(
            resident_url(run, TTS_RESIDENT),
            cfg.tts_model,
            voice,
            max_new_tokens=cfg.tts_max_new_tokens,
            tokens_per_second=cfg.tts_tokens_per_second,
        )
        if use_gpu_tts
        else EspeakEngine(voice)
    )

    await run.progress(0, None, "writing the spoken script")
    if params.rewrite:
        llm = run.config.llm.local.resident
        _, body = split_frontmatter(text)
        async with run.use_resident(llm, then=TTS_RESIDENT if use_gpu_tts else None):
            raw = await local_complete(run, SCRIPT_SYSTEM, f"Title: {title}\n\n{body}", max_tokens=cfg.llm_max_tokens)
        script = clean_script(raw)
    else:
        script = clean_script(text)
    if not script:
        raise HubError("the spoken script came out empty; nothing to read")
    chunks = chunk_script(script, cfg.tts_chunk_chars)
    await run.log("script ready", chars=len(script), chunks=len(chunks))

    pcm_parts: list[bytes] = []

    async def speak_all(lease=None) -> None:
        await engine.check_voice()
        for i, chunk in enumerate(chunks, 1):
            parts = await synth_checked(engine, chunk, f"{i}/{len(chunks)}")
            if len(parts) > 1:
                await run.log("speech chunk came back cut; spoken again in parts", chunk=i, parts=len(parts))
            pcm_parts.extend(parts)
            await run.progress(i, len(chunks) + 1, f"speech: chunk {i}/{len(chunks)}")
            if lease is not None and i < len(chunks):
                await lease.checkpoint(i / len(chunks))  # may give the GPU to a chat and come back

    if use_gpu_tts:
        per_chunk = TTS_CHUNK_EST_S
        async with run.use_resident(TTS_RESIDENT, est_seconds=10 + per_chunk * len(chunks),
                                    checkpoint_s=per_chunk) as lease:
            if lease.base_url:
                engine.base_url = lease.base_url.rstrip("/")
            await speak_all(lease)
    else:
        await speak_all()

    out_dir = (cfg.blog_dir.expanduser() / cfg.podcast_subdir) if cfg.blog_dir else run.artifacts_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{stem or slugify(title, fallback='episode')}.{fmt}"
    remove_leftovers(out_dir, run)
    tmp = out.with_name(f".{out.name}.{run.job_id}{PARTIAL}")
    await run.progress(len(chunks), len(chunks) + 1, "normalising and encoding")
    try:
        lufs, true_peak = await encode_episode(
            b"".join(pcm_parts), tmp, fmt, title=title, artist=cfg.podcast_artist, lufs=cfg.loudness_lufs
        )
        info = await probe(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    await run.progress(len(chunks) + 1, len(chunks) + 1, "episode written")
    return PodcastResult(
        path=str(out),
        title=title,
        duration_s=round(info["duration"], 3),
        size_bytes=out.stat().st_size,
        format=fmt,
        voice=voice,
        engine=engine.name,
        chunks=len(pcm_parts),
        chunk_seconds=[round(pcm_seconds(p), 3) for p in pcm_parts],
        script_chars=len(script),
        loudness_lufs=lufs,
        true_peak_dbtp=true_peak,
    )
