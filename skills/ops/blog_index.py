"""The blog search index: Astro content files (`*.md`/`*.mdx` with YAML frontmatter) in SQLite FTS5.

Kept fresh by file mtime and size on every use (changed files re-read, deleted ones dropped), so
there is no watcher to run. Ranking is bm25 with weights title > tags > body.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from hub.store import Store

WEIGHTS = (10.0, 4.0, 1.0)  # bm25 weights of the FTS columns title, tags, body
EXTENSIONS = (".md", ".mdx")
_FRONTMATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|\Z)", re.S)
_MDX_ESM = re.compile(r"^(import|export)\s.*$", re.M)
_HEADING = re.compile(r"^#\s+(.+)$", re.M)
_WORD = re.compile(r"\w+", re.U)

_locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Article:
    path: str
    slug: str
    title: str
    tags: list[str]
    date: str | None
    description: str | None
    draft: bool
    body: str


@dataclass(frozen=True)
class SyncStats:
    added: int = 0
    updated: int = 0
    removed: int = 0
    total: int = 0


def _tags(value: Any) -> list[str]:
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, list):
        return [str(t).strip() for t in value if str(t).strip()]
    return []


def parse_article(rel_path: str, text: str) -> Article:
    """Frontmatter and body of one content file; the slug follows Astro (path, `index` folded, `slug:` wins)."""
    meta: dict[str, Any] = {}
    body = text
    m = _FRONTMATTER.match(text)
    if m:
        try:
            loaded = yaml.safe_load(m.group(1))
        except yaml.YAMLError:
            loaded = None
        meta = loaded if isinstance(loaded, dict) else {}
        body = text[m.end():]
    if rel_path.endswith(".mdx"):
        body = _MDX_ESM.sub("", body)
    stem = rel_path.rsplit(".", 1)[0]
    if stem == "index" or stem.endswith("/index"):
        stem = stem[: -len("index")].rstrip("/") or "index"
    slug = str(meta.get("slug") or stem).strip("/")
    heading = _HEADING.search(body)
    title = str(meta.get("title") or (heading.group(1).strip() if heading else Path(stem).name))
    date = next((meta[k] for k in ("pubDate", "date", "publishDate", "published") if meta.get(k)), None)
    description = meta.get("description") or meta.get("summary")
    return Article(path=rel_path, slug=slug, title=title, tags=_tags(meta.get("tags")),
                   date=str(date) if date is not None else None,
                   description=str(description) if description else None,
                   draft=bool(meta.get("draft")), body=body.strip())


def _scan(root: Path) -> dict[str, tuple[int, int]]:
    """rel path -> (mtime_ns, size) of every content file (Astro skips names starting with `_`).

    Symlinks are followed only while they stay inside the blog: a link to `/etc/passwd` or to a
    folder outside is skipped, so the index (and blog_search) never serves files from elsewhere.
    """
    found: dict[str, tuple[int, int]] = {}
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):  # does not descend into symlinked folders
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "_"))]
        for name in filenames:
            if name.endswith(EXTENSIONS) and not name.startswith(("_", ".")):
                full = Path(dirpath, name)
                try:
                    if not _inside(full, real_root):
                        continue
                    st = full.stat()
                except OSError:
                    continue
                found[full.relative_to(root).as_posix()] = (st.st_mtime_ns, st.st_size)
    return found


def _inside(path: Path, real_root: Path) -> bool:
    real = path.resolve()
    return real.is_relative_to(real_root)


def _read(root: Path, rel_paths: list[str]) -> list[Article]:
    out = []
    real_root = root.resolve()
    for rel in rel_paths:
        try:
            if not _inside(root / rel, real_root):  # swapped for a link since the scan
                continue
            text = (root / rel).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        out.append(parse_article(rel, text))
    return out


async def sync(store: Store, root: Path) -> SyncStats:
    """Bring the index of `root` up to date with the files on disk (one sync at a time per store).

    Every change is written in one `store.transaction()`: a doc row and its full-text row never
    part (a crash between them would leave a post whose unchanged file is never indexed again)."""
    lock = _locks.setdefault(store, asyncio.Lock())
    async with lock:
        key = str(root)
        on_disk = await asyncio.to_thread(_scan, root)
        rows = await store.db.execute_fetchall("SELECT id, path, mtime_ns, size FROM blog_docs WHERE root = ?",
                                               (key,))
        indexed = {r[1]: (r[0], r[2], r[3]) for r in rows}
        changed = [p for p, stat in on_disk.items() if p not in indexed or indexed[p][1:] != stat]
        removed = [indexed[p][0] for p in indexed if p not in on_disk]
        articles = await asyncio.to_thread(_read, root, changed)
        if not removed and not articles:
            return SyncStats(added=0, updated=0, removed=0, total=len(on_disk))
        async with store.transaction() as tx:
            added, updated = await tx.run(_write, key, indexed, on_disk, removed, articles)
        return SyncStats(added=added, updated=updated, removed=len(removed), total=len(on_disk))


def _write(conn: sqlite3.Connection, key: str, indexed: dict[str, tuple], on_disk: dict[str, tuple[int, int]],
           removed: list[int], articles: list[Article]) -> tuple[int, int]:
    """On the store's write thread, inside the transaction: (added, updated)."""
    for doc_id in removed:
        conn.execute("DELETE FROM blog_fts WHERE rowid = ?", (doc_id,))
        conn.execute("DELETE FROM blog_docs WHERE id = ?", (doc_id,))
    added = updated = 0
    for art in articles:
        mtime_ns, size = on_disk[art.path]
        values = (art.slug, mtime_ns, size, art.title, ", ".join(art.tags), art.date, art.description,
                  int(art.draft), art.body, time.time())
        if art.path in indexed:
            doc_id = indexed[art.path][0]
            conn.execute(
                "UPDATE blog_docs SET slug=?, mtime_ns=?, size=?, title=?, tags=?, date=?, description=?, "
                "draft=?, body=?, indexed_at=? WHERE id=?", (*values, doc_id))
            conn.execute("DELETE FROM blog_fts WHERE rowid = ?", (doc_id,))
            updated += 1
        else:
            doc_id = conn.execute(
                "INSERT INTO blog_docs(slug, mtime_ns, size, title, tags, date, description, draft, body, "
                "indexed_at, root, path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, key, art.path)).lastrowid
            added += 1
        conn.execute("INSERT INTO blog_fts(rowid, title, tags, body) VALUES (?, ?, ?, ?)",
                     (doc_id, art.title, " ".join(art.tags), art.body))
    return added, updated


def fts_query(text: str, mode: str = "AND") -> str | None:
    """User words as quoted FTS5 terms (no operator injection); None when there are no words."""
    words = _WORD.findall(text)
    if not words:
        return None
    return f" {mode} ".join('"' + w.replace('"', '""') + '"' for w in words)


async def search(db, root: Path, query: str, limit: int) -> list[dict[str, Any]]:
    """Ranked hits (all words first; any word when that finds nothing), with a body snippet."""
    sql = (
        "SELECT d.slug, d.title, d.tags, d.date, d.description, d.draft, "
        f"bm25(blog_fts, {WEIGHTS[0]}, {WEIGHTS[1]}, {WEIGHTS[2]}) AS score, "
        "snippet(blog_fts, 2, '**', '**', '…', 24) AS snip "
        "FROM blog_fts JOIN blog_docs d ON d.id = blog_fts.rowid "
        "WHERE blog_fts MATCH ? AND d.root = ? ORDER BY score, d.date DESC LIMIT ?")
    for mode in ("AND", "OR"):
        match = fts_query(query, mode)
        if match is None:
            return []
        rows = await db.execute_fetchall(sql, (match, str(root), limit))
        if rows:
            return [{"slug": r[0], "title": r[1], "tags": [t for t in r[2].split(", ") if t], "date": r[3],
                     "description": r[4], "draft": bool(r[5]), "score": round(-r[6], 6), "snippet": r[7]}
                    for r in rows]
    return []


async def get(db, root: Path, slug: str) -> dict[str, Any] | None:
    rows = await db.execute_fetchall(
        "SELECT slug, title, tags, date, description, draft, path, body FROM blog_docs WHERE root = ? AND slug = ?",
        (str(root), slug.strip("/")))
    if not rows:
        return None
    r = rows[0]
    return {"slug": r[0], "title": r[1], "tags": [t for t in r[2].split(", ") if t], "date": r[3],
            "description": r[4], "draft": bool(r[5]), "path": r[6], "body": r[7]}


async def slugs(db, root: Path) -> list[str]:
    rows = await db.execute_fetchall("SELECT slug FROM blog_docs WHERE root = ? ORDER BY slug", (str(root),))
    return [r[0] for r in rows]
