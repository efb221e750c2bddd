"""publish_article: raw notes -> article (local model only) -> hero image -> Astro site -> build,
deploy, commit. Destructive (it changes a public site), so callers are asked for approval.

Every stage is a progress step. Nothing in the site changes before the build succeeded, and a
failing deploy restores the site; draft mode writes `<drafts>/<slug>.md` and its hero image in the
drafts folder, outside everything Astro reads, and stops before the build.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from pydantic import BaseModel, Field

from hub.confine import confine
from hub.errors import HubError
from hub.jobs import SkillRun
from hub.registry import Permission, skill
from skills.content.article import ARTICLE_SYSTEM, MAX_NOTES_CHARS, parse_draft, render_markdown
from skills.content.hero_image import RESIDENT as IMAGE_RESIDENT
from skills.content.hero_image import HeroImageParams, render, resident_url
from skills.content.llm import local_complete
from skills.content.published import earlier, forget, notes_key, remember
from skills.content.research import cite, gather
from skills.content.site import Site, Transaction, build_error, git_publish, run_command
from skills.content.slugs import SLUG_PATTERN, slugify


class PublishParams(BaseModel):
    notes: str = Field(min_length=1, description="Raw engineering notes, or the path of a notes file (/... or ~/...) "
                       "inside skills.content.notes_dir")
    draft: bool = Field(
        False, description="Save the article in the drafts folder, which no build reads; no build, no deploy"
    )
    force: bool = Field(False, description="Replace an existing article or draft with the same slug")
    slug: str | None = Field(None, pattern=SLUG_PATTERN, description="default: from the title (any script)")
    image: bool = Field(True, description="Render a hero image with FLUX.1-schnell")
    image_prompt: str | None = Field(None, max_length=2000, description="default: from title and description")
    research: bool | None = Field(
        None, description="Research the web through the box's own SearXNG first and end with Further reading; "
        "default: skills.web.research")


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
    further_reading: list[str] = Field(default_factory=list, description="the cited web sources' URLs")


def read_notes(notes: str, roots: list[Path | None] | None = None) -> str:
    """The notes text; a single line that is a path (/... or ~/...) names a file holding them, which
    must lie inside `roots` (notes_dir, the artifacts dir) after resolving symlinks: any other path
    gets one refusal, the same whether or not the file exists."""
    ref = notes.strip()
    if "\n" not in ref and ref.startswith(("/", "~")) and len(ref) < 4096 and not any(c.isspace() for c in ref):
        path = confine(ref, roots or [], what="notes files", setting="skills.content.notes_dir")
        if not path.is_file():
            raise HubError(f"no notes file at {ref} in skills.content.notes_dir")
        if path.stat().st_size > MAX_NOTES_CHARS * 4:
            raise HubError(f"the notes file {ref} is too large; the limit is {MAX_NOTES_CHARS} characters")
        notes = path.read_text(errors="replace")
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
    open_world=True,  # deploys the public site and pushes the commit
    timeout_s=3600,
    long_running=True,
    est_seconds=240,
    command="publish",
)
async def publish_article(run: SkillRun, params: PublishParams) -> PublishResult:
    cfg = run.config.skills.content
    if cfg.blog_dir is None:
        raise HubError("publishing needs skills.content.blog_dir (the Astro site checkout)")
    site = Site(cfg.blog_dir, cfg.content_subdir, cfg.hero_style, cfg.dist_subdir, cfg.drafts_subdir)
    site.check()
    if not params.draft and (stray := site.stray_drafts()):
        names = ", ".join(str(p.relative_to(site.root)) for p in stray[:5])
        raise HubError(
            f"{names} would be published by the next build (Astro 5 publishes files starting with _); "
            f"move drafts to {site.drafts_dir} or delete them, then publish again"
        )
    notes = read_notes(params.notes, [cfg.notes_dir, run.config.storage.artifacts_dir])
    total = 2 if params.draft else 5
    key = notes_key(notes, site.root)
    if not params.draft and not params.force and (before := await earlier(run.hub.store.db, key)):
        await run.progress(total, total, "already published from these notes")
        how = "" if before["done"] else (" (that run was interrupted after the site changed: check that it is "
                                         "deployed and committed)")
        return PublishResult(**{**before["result"], "warning": (
            f"these notes were already published as {before['result']['slug']!r} by job {before['job_id']}"
            f"{how}; nothing was published twice (force=true publishes again)")})

    await run.progress(0, total, "writing the article with the local model")
    async with run.use_resident(run.config.llm.local.resident, then=IMAGE_RESIDENT if params.image else None):
        # Research (optional): local model -> queries -> the box's SearXNG -> numbered sources.
        found = None
        if params.research if params.research is not None else run.config.skills.web.research:
            await run.progress(0, total, "researching the web (SearXNG)")
            found = await gather(run, notes, max_tokens=cfg.llm_max_tokens)
            await run.progress(0, total, f"writing the article with the local model ({len(found.sources)} sources)")
        reply = await local_complete(run, ARTICLE_SYSTEM + (found.instructions if found else ""),
                                     notes + (found.brief() if found else ""), max_tokens=cfg.llm_max_tokens)
    draft = parse_draft(reply)
    further: list[str] = []
    if found is not None:
        draft, further = cite(draft, found, notes)
    slug = params.slug or slugify(draft.title)
    target = site.draft_path(slug) if params.draft else site.content_dir / f"{slug}.md"
    taken = site.taken(slug)
    if taken and not params.force:
        names = ", ".join(str(p.relative_to(site.root)) for p in taken)
        raise HubError(
            f"the slug {slug!r} is taken: {names} already exists; pass force=true to replace it, "
            f"or choose another slug (slug={site.free_slug(slug)} is free)"
        )
    clash = next((p for p in site.article_names(slug) if p.exists() and p != target), None)
    if clash is not None and not params.draft:
        raise HubError(f"the article {clash.relative_to(site.root)} has this slug; remove it first")
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
        if params.draft:  # next to the draft: nothing under src/assets or public/ before publishing
            rel, hero_value = target.with_suffix(".png").relative_to(site.root), f"./{slug}.png"
        else:
            rel, hero_value = site.hero_paths(slug)
        tx.add(rel, Path(image.path).read_bytes(), replace=params.force)
    article_rel = target.relative_to(site.root)
    text = render_markdown(draft, dt.date.today(), hero_value)
    tx.add(article_rel, text.encode(), replace=params.force)
    hero_rel = next((p for p in tx.files if p != article_rel), None)

    def result(**flags) -> PublishResult:
        return PublishResult(
            slug=slug,
            title=draft.title,
            article_path=str(site.root / article_rel),
            hero_image=str(site.root / hero_rel) if hero_rel else None,
            draft=params.draft,
            further_reading=further,
            **{"built": False, "deployed": False, "committed": False, "pushed": False, **flags},
        )

    live = False  # once deployed, a later git failure is reported, never rolled back
    try:
        if params.draft:
            await asyncio.to_thread(tx.apply, None)  # file trees move off the event loop
            await run.progress(2, total, "draft saved (not built, not deployed)")
            return result()
        built = None
        if cfg.build_command:
            await run.progress(2, total, "building the site")
            built = await tx.build(cfg.build_command, cfg.command_timeout_s, log=run.artifacts_dir / "build.log")
        await remember(run.hub.store.db, key, run.job_id, result(built=built is not None).model_dump(), done=False)
        await asyncio.to_thread(tx.apply, built)
        if cfg.deploy_command:
            await run.progress(3, total, "deploying")
            deployed = await run_command(cfg.deploy_command, site.root, cfg.command_timeout_s)
            if deployed.code != 0:
                log = run.artifacts_dir / "deploy.log"
                log.write_text(deployed.output)
                raise HubError(
                    f"the deploy failed (exit {deployed.code}), the site was restored: "
                    f"{build_error(deployed.output)} (full log: {log})"
                )
        live = True
        await run.progress(4, total, "committing")
        paths = [site.root / p for p in tx.files]
        committed, pushed, warning = await git_publish(
            site, paths, f"Publish: {draft.title}", cfg.git_push, cfg.command_timeout_s
        )
        await run.progress(5, total, "published")
        final = result(
            built=built is not None,
            deployed=bool(cfg.deploy_command),
            committed=committed,
            pushed=pushed,
            warning=warning or None,
        )
        await remember(run.hub.store.db, key, run.job_id, final.model_dump(), done=True)
        return final
    except BaseException:
        if not live and not params.draft:
            await asyncio.to_thread(tx.rollback)
            await forget(run.hub.store.db, key)
        raise
    finally:
        await asyncio.to_thread(tx.cleanup)
