"""Slugs for titles in every script, and a site that never lets two articles share one."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skills.content.site import PublishError, Site, Transaction
from skills.content.slugs import SLUG_PATTERN, slugify, title_hash, transliterate

TITLES = st.text(min_size=0, max_size=300)


@settings(max_examples=1500, deadline=None)
@given(TITLES)
def test_every_title_gets_a_valid_bounded_slug(title):
    slug = slugify(title)
    assert re.fullmatch(SLUG_PATTERN, slug) and len(slug) <= 60
    assert "--" not in slug and not slug.endswith("-")
    assert slugify(title) == slug  # stable: the same title always lands on the same file


@settings(max_examples=800, deadline=None)
@given(st.text(alphabet=st.characters(categories=["P", "Z", "C"]), max_size=40), st.text(max_size=40))
def test_titles_with_nothing_left_after_transliteration_get_a_hash_of_their_own(a, b):
    if re.search(r"[A-Za-z0-9]", transliterate(a)):
        return
    assert slugify(a) == f"post-{title_hash(a)}"
    if a != b and not re.search(r"[A-Za-z0-9]", transliterate(b)):
        assert slugify(b) != slugify(a)


@settings(max_examples=1000, deadline=None)
@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_long_titles_that_begin_alike_still_get_different_slugs(tail_a, tail_b):
    prefix = "A very long title about unified memory on a desk-side GPU box, part "
    if tail_a != tail_b:
        assert slugify(prefix + tail_a) != slugify(prefix + tail_b)


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Ünïcode für alle: ein Überblick", "unicode-fur-alle-ein-uberblick"),
        ("Привет, мир: заметки о GB10", "privet-mir-zametki-o-gb10"),
        ("Ελληνικά για αρχάριους", "ellinika-gia-archarioys"),
        ("日本語のタイトル", "ri-ben-yu-notaitoru"),
        ("统一内存", "tong-yi-nei-cun"),
        ("한국어 제목", "hangugeo-jemog"),
        ("Straße & Maße", "strasse-masse"),
        ("🚀 Launch day", "rocket-launch-day"),
    ],
)
def test_titles_in_other_scripts_are_transliterated_not_dropped(title, slug):
    assert slugify(title) == slug


def test_a_title_of_punctuation_only_gets_a_hashed_slug():
    assert slugify("???") == f"post-{title_hash('???')}" != slugify("!!!")
    assert slugify("", fallback="image").startswith("image-")


def make_site(tmp_path: Path) -> Site:
    (tmp_path / "src" / "content" / "blog").mkdir(parents=True)
    return Site(tmp_path)


def test_a_slug_is_taken_by_a_published_article_or_a_draft_in_any_form(tmp_path):
    site = make_site(tmp_path)
    assert site.taken("x") == []
    for rel in ("src/content/blog/x.mdx", "drafts/y.md", "src/content/blog/_z.md", "src/content/blog/w/index.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("---\ntitle: t\n---\n")
    assert [p.relative_to(tmp_path).as_posix() for s in "xyzw" for p in site.taken(s)] == [
        "src/content/blog/x.mdx",
        "drafts/y.md",
        "src/content/blog/_z.md",
        "src/content/blog/w/index.md",
    ]
    (tmp_path / "drafts" / "y-2.md").write_text("")
    assert site.free_slug("y") == "y-3"
    assert site.stray_drafts() == [tmp_path / "src/content/blog/_z.md"]


@pytest.mark.parametrize("drafts", ["src/content/blog/drafts", "public/drafts", "src/pages/drafts", ".", "../out"])
def test_a_drafts_folder_astro_would_read_is_refused(tmp_path, drafts):
    site = make_site(tmp_path / "site")
    site.drafts_subdir = drafts
    with pytest.raises(PublishError, match="drafts"):
        site.check()


def test_two_transactions_racing_for_one_new_file_never_overwrite_each_other(tmp_path):
    site = make_site(tmp_path)
    rel = Path("src/content/blog/same-slug.md")
    for round_ in range(30):
        txs = [Transaction(site) for _ in range(4)]
        for i, tx in enumerate(txs):
            tx.add(rel, f"writer {i}".encode())
        outcomes: list[str] = []
        barrier = threading.Barrier(len(txs))

        def apply(tx: Transaction, barrier: threading.Barrier, outcomes: list[str]) -> None:
            barrier.wait()
            try:
                tx.apply(None)
                outcomes.append("ok")
            except PublishError as exc:
                assert "already exists" in str(exc)
                tx.rollback()  # what publish does on failure: must not delete the winner's file
                outcomes.append("refused")

        threads = [threading.Thread(target=apply, args=(tx, barrier, outcomes)) for tx in txs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["ok", "refused", "refused", "refused"], round_
        winner = (tmp_path / rel).read_text()
        assert winner.startswith("writer ")
        (tmp_path / rel).unlink()
    assert not list(tmp_path.rglob("*.sovhub-tmp"))


def test_force_replaces_and_a_rollback_puts_the_old_file_back(tmp_path):
    site = make_site(tmp_path)
    path = tmp_path / "src/content/blog/a.md"
    path.write_text("old")
    tx = Transaction(site)
    tx.add(Path("src/content/blog/a.md"), b"new", replace=True)
    tx.apply(None)
    assert path.read_text() == "new"
    tx.rollback()
    assert path.read_text() == "old"
