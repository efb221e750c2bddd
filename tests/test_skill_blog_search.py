"""search_blog / get_article: an Astro content dir indexed in SQLite FTS5, kept fresh by mtime."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub.config.model import HubConfig
from hub.context import Context
from hub.core import Hub
from hub.errors import HubError, InvalidParams
from hub.registry import Permission, SkillRegistry
from skills.ops.blog_index import fts_query, parse_article
from skills.ops.blog_search import UnknownArticle

POSTS = {
    "quantization-on-the-gb10.md": """---
title: Quantization on the GB10
description: NVFP4 weights for a 119B model
pubDate: 2026-03-01
tags: [gpu, llm]
---
# Why smaller weights

Mistral Small 4 fits in unified memory when stored in four bits.
""",
    "sourdough.md": """---
title: Weekend sourdough
pubDate: 2026-02-01
tags: bread, kitchen
---
Between two feedings of the starter I read about quantization of neural networks, which has
nothing to do with bread, and then went back to shaping the loaf.
""",
    "2026/matrix-bridges/index.mdx": """---
title: Bridging Matrix rooms
tags: [matrix, e2ee]
---
import Figure from '../../components/Figure.astro'

<Figure src="/bridge.png" />

End-to-end encrypted rooms need a device with keys.
""",
    "_draft-notes.md": "---\ntitle: Hidden partial\n---\nquantization notes\n",
    **{f"notes-{i}.md": f"---\ntitle: Field notes {i}\ntags: [walks]\n---\nA walk by the river, day {i}.\n"
       for i in range(4)},
}


def write_site(root: Path) -> Path:
    content = root / "site" / "src" / "content" / "blog"
    for rel, text in POSTS.items():
        path = content / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return content


@pytest.fixture
async def blog(tmp_path):
    content = write_site(tmp_path)
    registry = SkillRegistry()
    registry.discover("skills.ops")
    config = HubConfig.model_validate({"storage": {"data_dir": str(tmp_path / "data")},
                                       "skills": {"content": {"blog_dir": str(tmp_path / "site")}}})
    hub = await Hub.start(config, skills=registry, components=(), resume_jobs=False)
    try:
        yield hub, content
    finally:
        await hub.stop()


async def run(hub: Hub, name: str, **params):
    return await hub.run_skill(name, params, Context.new("mcp"), grant=Permission.read)


def touch_later(path: Path, text: str) -> None:
    """Rewrite a file with an mtime clearly after the indexed one (coarse file-system clocks)."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


async def test_a_title_hit_ranks_above_a_body_hit(blog):
    hub, _ = blog
    out = await run(hub, "search_blog", query="quantization")
    assert [h.slug for h in out.hits] == ["quantization-on-the-gb10", "sourdough"]
    assert out.hits[0].score > out.hits[1].score
    assert "**quantization**" in out.hits[1].snippet.lower()
    assert out.indexed == 7  # the `_`-prefixed partial is not a post


async def test_a_changed_file_is_reindexed_and_a_deleted_one_dropped(blog):
    hub, content = blog
    assert (await run(hub, "search_blog", query="zeppelin")).hits == []
    touch_later(content / "sourdough.md", POSTS["sourdough.md"].replace("shaping the loaf", "watching a zeppelin"))
    hits = (await run(hub, "search_blog", query="zeppelin")).hits
    assert [h.slug for h in hits] == ["sourdough"] and "**zeppelin**" in hits[0].snippet

    (content / "sourdough.md").unlink()
    out = await run(hub, "search_blog", query="quantization")
    assert [h.slug for h in out.hits] == ["quantization-on-the-gb10"] and out.indexed == 6
    with pytest.raises(UnknownArticle):
        await run(hub, "get_article", slug="sourdough")


async def test_tags_and_mdx_posts_are_searchable_and_fetched_by_astro_slug(blog):
    hub, _ = blog
    hits = (await run(hub, "search_blog", query="e2ee", limit=3)).hits
    assert [h.slug for h in hits] == ["2026/matrix-bridges"] and hits[0].tags == ["matrix", "e2ee"]
    art = await run(hub, "get_article", slug="2026/matrix-bridges")
    assert art.title == "Bridging Matrix rooms" and "import Figure" not in art.body
    assert art.path == "2026/matrix-bridges/index.mdx"
    first = await run(hub, "get_article", slug="quantization-on-the-gb10")
    assert first.date == "2026-03-01" and first.tags == ["gpu", "llm"] and "four bits" in first.body


async def test_an_unknown_slug_is_a_clear_error_with_suggestions(blog):
    hub, _ = blog
    with pytest.raises(UnknownArticle, match=r"no blog post with slug 'sourdogh' \(7 posts indexed\); did you mean "
                                             r"sourdough\?"):
        await run(hub, "get_article", slug="sourdogh")


async def test_all_words_rank_first_and_any_word_is_the_fallback(blog):
    hub, _ = blog
    assert [h.slug for h in (await run(hub, "search_blog", query="bread quantization")).hits] == ["sourdough"]
    assert {h.slug for h in (await run(hub, "search_blog", query="loaf matrix")).hits} == {
        "sourdough", "2026/matrix-bridges"}
    assert (await run(hub, "search_blog", query="!!! ???")).hits == []
    with pytest.raises(InvalidParams, match="query"):
        await run(hub, "search_blog", query="")


async def test_a_missing_blog_dir_says_what_to_configure(tmp_path):
    registry = SkillRegistry()
    registry.discover("skills.ops")
    config = HubConfig.model_validate({"storage": {"data_dir": str(tmp_path / "data")}})
    hub = await Hub.start(config, skills=registry, components=(), resume_jobs=False)
    try:
        with pytest.raises(HubError, match=r"set skills\.content\.blog_dir"):
            await run(hub, "search_blog", query="x")
    finally:
        await hub.stop()


def test_query_words_are_quoted_so_fts_operators_cannot_be_injected():
    assert fts_query('title:x OR "a" NEAR(b)') == '"title" AND "x" AND "OR" AND "a" AND "NEAR" AND "b"'
    assert parse_article("a/index.md", "no frontmatter\n# Heading\ntext").title == "Heading"
    assert parse_article("a/index.md", "x").slug == "a"
    assert parse_article("p.md", "---\nslug: custom/here\ntitle: T\n---\nb").slug == "custom/here"
