"""publish_article: raw notes -> article (local model only) -> hero image -> Astro site -> build,
deploy, commit. Destructive (it changes a public site), so callers are asked for approval.

Every stage is a progress step. Nothing in the site changes before the build succeeded, and a
failing deploy restores the site; draft mode writes `_<slug>.md` (which Astro's glob loader skips)
and stops before the build.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import BaseModel, Field

from hub.errors import HubError
from hub.jobs import SkillRun
from hub.registry import Permission, skill
from skills.content.article import ARTICLE_SYSTEM, MAX_NOTES_CHARS, parse_draft, render_markdown
from skills.content.hero_image import RESIDENT as IMAGE_RESIDENT
from skills.content.hero_image import HeroImageParams, render, resident_url, slugify
from skills.content.llm import local_complete
from skills.content.site import Site, Transaction, git_publish, run_command, tail


class PublishParams(BaseModel):
    notes: str = Field(min_length=1, description="Raw engineering notes, or the path of a notes file (/... or ~/...)")
    draft: bool = Field(False, description="Write the article as an unpublished draft; no build, no deploy")
    force: bool = Field(False, description="Replace an existing article with the same slug")
    slug: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,79}$", description="default: from the title")
    image: bool = Field(True, description="Render a hero image with FLUX.1-schnell")
    image_prompt: str | None = Field(None, max_length=2000, description="default: from title and description")


class PublishResult(BaseModel):
    slug: str
    title: str
    article_path: str
    hero_image: str | None
    draft: bool
    built: bool
    deployed: bool
    committed: bool
    pushed: bool
    warning: str | None = None


def read_notes(notes: str) -> str:
    """The notes text; a single line that is a path (/... or ~/...) names a file holding them."""
    ref = notes.strip()
    if "\n" not in ref and ref.startswith(("/", "~")) and len(ref) < 4096:
        path = Path(ref).expanduser()
        if path.is_file():
            notes = path.read_text(errors="replace")
        elif not any(c.isspace() for c in ref):
            raise HubError(f"no notes file at {path}")
    if not notes.strip():
        raise HubError("the notes are empty")
    if len(notes) > MAX_NOTES_CHARS:
        raise HubError(f"the notes are {len(notes)} characters; the limit is {MAX_NOTES_CHARS}")
    return notes


@skill(
    name="publish_article",
    description="Write a blog article from raw notes with the local model (never "
    "the cloud), add a FLUX hero image, then build, deploy and commit the Astro site",
    params=PublishParams,
    result=PublishResult,
    permission=Permission.destructive,
    timeout_s=3600,
    long_running=True,
    est_seconds=240,
    command="publish",
)
async def publish_article(run: SkillRun, params: PublishParams) -> PublishResult:
    cfg = run.config.skills.content
    if cfg.blog_dir is None:
        raise HubError("publishing needs skills.content.blog_dir (the Astro site checkout)")
    site = Site(cfg.blog_dir, cfg.content_subdir, cfg.hero_style, cfg.dist_subdir)
    site.check()
    notes = read_notes(params.notes)
    total = 2 if params.draft else 5

    await run.progress(0, total, "writing the article with the local model")
    async with run.use_resident(run.config.llm.local.resident, then=IMAGE_RESIDENT if params.image else None):
        reply = await local_complete(run, ARTICLE_SYSTEM, notes, max_tokens=cfg.llm_max_tokens)
    draft = parse_draft(reply)
    slug = params.slug or slugify(draft.title)
    existing = site.existing(slug)
    if existing is not None and not params.force:
        raise HubError(
            f"an article {existing.name} already exists in {site.content_dir}; "
            "pass force=true to replace it, or choose another slug"
        )
    if existing is not None and existing != site.content_dir / f"{slug}.md":
        raise HubError(f"the article {existing.relative_to(site.content_dir)} has this slug; remove it first")
    await run.log("article written", title=draft.title, slug=slug)

    tx = Transaction(site)
    hero_value = None
    await run.progress(1, total, "rendering the hero image" if params.image else "no hero image")
    if params.image:
        prompt = params.image_prompt or (
            f"Editorial hero image for a technical blog article titled "
            f"'{draft.title}'. {draft.description} Clean, modern, no text."
        )
        async with run.use_resident(IMAGE_RESIDENT) as lease:
            image = await render(
                run,
                lease.base_url or resident_url(run, IMAGE_RESIDENT),
                HeroImageParams(prompt=prompt[:2000], name=slug),
                stage=(1, 1, total),
            )
        rel, hero_value = site.hero_paths(slug)
        tx.add(rel, Path(image.path).read_bytes())
    name = f"_{slug}.md" if params.draft else f"{slug}.md"
    article_rel = (site.content_dir / name).relative_to(site.root)
    text = render_markdown(draft, dt.date.today(), hero_value)
    tx.add(article_rel, text.encode())
    hero_rel = next((p for p in tx.files if p != article_rel), None)

    def result(**flags) -> PublishResult:
        return PublishResult(
            slug=slug,
            title=draft.title,
            article_path=str(site.root / article_rel),
            hero_image=str(site.root / hero_rel) if hero_rel else None,
            draft=params.draft,
            **{"built": False, "deployed": False, "committed": False, "pushed": False, **flags},
        )

    live = False  # once deployed, a later git failure is reported, never rolled back
    try:
        if params.draft:
            tx.apply(None)
            await run.progress(2, total, "draft saved (not built, not deployed)")
            return result()
        built = None
        if cfg.build_command:
            await run.progress(2, total, "building the site")
            built = await tx.build(cfg.build_command, cfg.command_timeout_s)
        tx.apply(built)
        if cfg.deploy_command:
            await run.progress(3, total, "deploying")
            deployed = await run_command(cfg.deploy_command, site.root, cfg.command_timeout_s)
            if deployed.code != 0:
                raise HubError(
                    f"the deploy failed (exit {deployed.code}), the site was restored: {tail(deployed.output)}"
                )
        live = True
        await run.progress(4, total, "committing")
        paths = [site.root / p for p in tx.files]
        committed, pushed, warning = await git_publish(
            site, paths, f"Publish: {draft.title}", cfg.git_push, cfg.command_timeout_s
        )
        await run.progress(5, total, "published")
        return result(
            built=built is not None,
            deployed=bool(cfg.deploy_command),
            committed=committed,
            pushed=pushed,
            warning=warning or None,
        )
    except BaseException:
        if not live and not params.draft:
            tx.rollback()
        raise
    finally:
        tx.cleanup()
