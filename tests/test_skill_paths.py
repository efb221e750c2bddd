"""Skills stay in their folders: paths given to skills resolve inside configured roots only (after
symlinks), with one refusal whether or not the file exists; the blog index never follows a link out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.config.model import HubConfig
from hub.confine import OutsideRoots, confine
from hub.context import Context
from hub.core import Hub
from hub.errors import HubError
from hub.registry import Permission, SkillRegistry
from tests.helpers_content import content_config, content_hub
from tests.test_skill_blog_search import write_site
from tests.test_skill_publish import make_site


def _tree(base: Path) -> tuple[Path, Path]:
    """notes/ (the root) with a real file, a link to a secret outside, a link to a folder outside
    and a link that stays inside; secret/ beside it."""
    root, secret = base / "notes", base / "secret"
    (root / "sub").mkdir(parents=True, exist_ok=True)
    secret.mkdir(exist_ok=True)
    (secret / "key").write_text("SECRET")
    (root / "a.md").write_text("notes")
    for name, target in (("out", secret / "key"), ("outdir", secret), ("in", root / "a.md")):
        if not (root / name).is_symlink():
            (root / name).symlink_to(target)
    return root, secret


PART = st.sampled_from(["..", ".", "a.md", "sub", "out", "outdir", "in", "key", "nope", "notes", "secret"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(PART, min_size=1, max_size=6), absolute=st.booleans())
def test_a_confined_path_is_inside_the_root_after_resolving_every_link(tmp_path, parts, absolute):
    root, secret = _tree(tmp_path)
    ref = str((root if absolute else Path()) / Path(*parts))
    real = Path(os.path.realpath(root / ref))
    try:
        got = confine(ref, [root], what="notes files", setting="skills.content.notes_dir")
    except OutsideRoots as exc:
        assert not real.is_relative_to(root.resolve())
        # one message, whether the target exists or not: nothing but the caller's own words
        assert str(exc) == f"notes files are read only from skills.content.notes_dir ({root.resolve()}); " \
                           f"{ref} is not there"
    else:
        assert got == real and got.is_relative_to(root.resolve()) and secret not in got.parents


def test_without_a_configured_root_every_path_is_refused():
    with pytest.raises(OutsideRoots, match="notes_dir, which is not set; pass the text itself"):
        confine("/etc/hostname", [None], what="notes files", setting="skills.content.notes_dir")


async def _publish(hub: Hub, notes: str):
    async def approve(skill, params, ctx) -> bool:
        return True

    return await hub.run_skill("publish_article", {"notes": notes, "image": False},
                               Context.new("mcp", user="vibe"), grant=Permission.destructive, approver=approve)


async def test_publish_article_reads_notes_only_from_the_notes_dir(tmp_path):
    root, _ = _tree(tmp_path)
    site = make_site(tmp_path, remote=False)
    config = content_config(tmp_path, blog_dir=str(site), notes_dir=str(root))
    home = Path("~").expanduser()
    attempts = ["/etc/passwd", "/etc/no-such-file", f"{home}/.ssh/id_ed25519", "~/.ssh/id_rsa",
                f"{root}/out", f"{root}/outdir/key", f"{root}/../secret/key", f"{root}/sub/../../secret/key"]
    async with content_hub(config) as hub:
        messages = []
        for ref in attempts:
            with pytest.raises(HubError) as caught:
                await _publish(hub, ref)
            messages.append(str(caught.value).replace(ref, "<ref>"))
        assert len(set(messages)) == 1 and "read only from skills.content.notes_dir" in messages[0]
        # inside the root: a missing file may say so (the folder is the caller's own)
        with pytest.raises(HubError, match="no notes file"):
            await _publish(hub, f"{root}/missing.md")


async def test_the_blog_index_does_not_follow_links_out_of_the_blog(tmp_path):
    content = write_site(tmp_path)
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "diary.md").write_text("---\ntitle: Diary\n---\nzanzibar password hunter2\n")
    (content / "leak.md").symlink_to(outside / "diary.md")
    (content / "leaks").symlink_to(outside, target_is_directory=True)
    (content / "mirror.md").symlink_to(content / "sourdough.md")  # a link inside the blog is fine
    registry = SkillRegistry()
    registry.discover("skills.ops")
    config = HubConfig.model_validate({"storage": {"data_dir": str(tmp_path / "data")},
                                       "skills": {"content": {"blog_dir": str(tmp_path / "site")}}})
    hub = await Hub.start(config, skills=registry, components=(), resume_jobs=False)
    try:
        out = await hub.run_skill("search_blog", {"query": "zanzibar"}, Context.new("mcp"), grant=Permission.read)
        assert out.hits == []
        with pytest.raises(HubError, match="no blog post with slug 'leak'"):
            await hub.run_skill("get_article", {"slug": "leak"}, Context.new("mcp"), grant=Permission.read)
        mirrored = await hub.run_skill("get_article", {"slug": "mirror"}, Context.new("mcp"), grant=Permission.read)
        assert mirrored.slug == "mirror"
    finally:
        await hub.stop()
