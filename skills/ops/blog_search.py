"""`search_blog` and `get_article`: the Astro blog's posts, searchable from chat, tools and MCP."""

from __future__ import annotations

import difflib
from pathlib import Path

from pydantic import BaseModel, Field

from hub.config import HubConfig
from hub.errors import HubError
from hub.jobs import SkillRun
from hub.registry import Permission, skill
from skills.ops import blog_index


class UnknownArticle(HubError):
    pass


def content_dir(config: HubConfig) -> Path:
    """`skills.ops.blog_content_dir`, else `skills.content.blog_dir`/src/content/blog."""
    ops_dir = config.skills.ops.blog_content_dir
    site = config.skills.content.blog_dir
    if ops_dir is None and site is None:
        raise HubError("no blog is configured: set skills.content.blog_dir (the Astro site) or "
                       "skills.ops.blog_content_dir")
    root = (ops_dir or site / "src" / "content" / "blog").expanduser().resolve()  # type: ignore[operator]
    if not root.is_dir():
        raise HubError(f"the blog content directory {root} does not exist")
    return root


class SearchParams(BaseModel):
    query: str = Field(min_length=1, max_length=500, description="words to look for (title, tags, text)")
    limit: int = Field(5, ge=1, le=50)


class PostMeta(BaseModel):
    """What a post's frontmatter says; shared by search hits and whole articles."""

    slug: str
    title: str
    tags: list[str] = Field(default_factory=list)
    date: str | None = None
    description: str | None = None
    draft: bool = False


class BlogHit(PostMeta):
    score: float
    snippet: str


class SearchResult(BaseModel):
    query: str
    hits: list[BlogHit]
    indexed: int


class ArticleParams(BaseModel):
    slug: str = Field(min_length=1, max_length=300, description="the post's slug, as search_blog returns it")


class ArticleResult(PostMeta):
    path: str
    body: str


@skill(name="search_blog", permission=Permission.read, timeout_s=60, est_seconds=1,
       description="Search the blog's posts (title, tags and text); ranked results with snippets.",
       params=SearchParams, result=SearchResult)
async def search_blog(run: SkillRun, params: SearchParams) -> SearchResult:
    root = content_dir(run.config)
    db = run.hub.store.db
    stats = await blog_index.sync(run.hub.store, root)
    hits = await blog_index.search(db, root, params.query, params.limit)
    return SearchResult(query=params.query, hits=[BlogHit(**h) for h in hits], indexed=stats.total)


@skill(name="get_article", permission=Permission.read, timeout_s=60, est_seconds=1,
       description="Get one blog post (frontmatter and full Markdown text) by its slug.",
       params=ArticleParams, result=ArticleResult)
async def get_article(run: SkillRun, params: ArticleParams) -> ArticleResult:
    root = content_dir(run.config)
    db = run.hub.store.db
    await blog_index.sync(run.hub.store, root)
    found = await blog_index.get(db, root, params.slug)
    if found is None:
        known = await blog_index.slugs(db, root)
        close = difflib.get_close_matches(params.slug.strip("/"), known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; search_blog finds slugs"
        raise UnknownArticle(f"no blog post with slug {params.slug!r} ({len(known)} posts indexed){hint}")
    return ArticleResult(**found)
