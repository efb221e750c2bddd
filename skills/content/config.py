"""`skills.content:` the blog, image and podcast pipelines."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from hub.config.base import Section
from hub.config.sections import skill_config

SLOWEST_SPEECH_CHARS_PER_S = 10.0  # a slow reader; typical TTS speech is 14-16


@skill_config("content")
class ContentSkillsConfig(Section):
    blog_dir: Path | None = Field(None, description="the Astro site checkout")
    notes_dir: Path | None = Field(
        None, description="notes files named by path are read only from here (or the artifacts dir); "
        "any other path is refused")
    content_subdir: str = Field("src/content/blog", description="articles, relative to blog_dir")
    hero_style: Literal["auto", "asset", "public"] = Field(
        "auto",
        description="asset: src/assets + relative heroImage (image() schema); public: /images/...; "
        "auto: asset when the site's content config uses image()",
    )
    drafts_subdir: str = Field(
        "drafts",
        description="unpublished drafts, relative to blog_dir; outside the content collection, src/pages and "
        "public/ so that no build can publish them",
    )
    podcast_subdir: str = Field("public/podcasts", description="episodes, relative to blog_dir")
    build_command: list[str] = Field(default_factory=list, description="e.g. [npm, run, build]; run in blog_dir")
    deploy_command: list[str] = Field(
        default_factory=list, description="e.g. [rsync, -a, --delete, dist/, /var/www/blog/]"
    )
    dist_subdir: str = Field("dist", description="the build output, moved into blog_dir after a good build")
    command_timeout_s: float = Field(600, gt=0)
    git_commit: bool = Field(True, description="commit the article when blog_dir is a git repository")
    git_push: bool = Field(True, description="push when the site repository has a remote")
    workflow: Path | None = Field(None, description="ComfyUI API-format workflow template")
    checkpoint: str = "flux1-schnell-fp8.safetensors"
    negative_prompt: str = ""
    image_width: int = Field(1024, ge=64, le=2048)
    image_height: int = Field(576, ge=64, le=2048)
    image_timeout_s: float = Field(600, gt=0)
    tts_engine: Literal["vllm-omni", "espeak"] = "espeak"
    tts_model: str = "mistralai/Voxtral-4B-TTS-2603"
    voice: str = "casual_male"
    tts_chunk_chars: int = Field(
        600,
        ge=50,
        le=4000,
        description="longest text sent in one speech request; with vllm-omni at most what max_new_tokens can "
        f"speak at a slow {SLOWEST_SPEECH_CHARS_PER_S:g} characters a second",
    )
    tts_max_new_tokens: int = Field(
        2048, ge=16, le=4096, description="vllm-omni's output cap per request (codec frames), sent with each one"
    )
    tts_tokens_per_second: float = Field(12.5, gt=0, description="codec frames per second of audio (Voxtral: 12.5)")
    podcast_format: Literal["mp3", "opus"] = "mp3"
    podcast_artist: str = "sovhub"
    loudness_lufs: float = Field(-16.0, ge=-40, le=-5)
    llm_max_tokens: int = Field(4096, ge=256)

    @model_validator(mode="after")
    def _chunks_fit_the_speech_cap(self) -> ContentSkillsConfig:
        """A chunk must be speakable within one request's output cap, or its end is silently cut."""
        if self.tts_engine != "vllm-omni":
            return self
        seconds = self.tts_max_new_tokens / self.tts_tokens_per_second
        most = int(seconds * SLOWEST_SPEECH_CHARS_PER_S)
        if self.tts_chunk_chars > most:
            raise ValueError(
                f"tts_chunk_chars {self.tts_chunk_chars} can take longer to speak than one vllm-omni request "
                f"returns ({seconds:.1f} s: max_new_tokens {self.tts_max_new_tokens} at "
                f"{self.tts_tokens_per_second:g} frames/s); use at most {most}, or raise tts_max_new_tokens"
            )
        return self
