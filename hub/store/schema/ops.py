"""The ops skills' tables: the blog search index (SQLite FTS5). Version N is MIGRATIONS[N-1]; append only."""

MIGRATIONS: list[str] = [
    # 1: one row per indexed article file, and its full-text index (rowid = blog_docs.id)
    """
    CREATE TABLE blog_docs (
        id INTEGER PRIMARY KEY,
        root TEXT NOT NULL,
        path TEXT NOT NULL,
        slug TEXT NOT NULL,
        mtime_ns INTEGER NOT NULL,
        size INTEGER NOT NULL,
        title TEXT NOT NULL,
        tags TEXT NOT NULL,
        date TEXT,
        description TEXT,
        draft INTEGER NOT NULL DEFAULT 0,
        body TEXT NOT NULL,
        indexed_at REAL NOT NULL,
        UNIQUE (root, path)
    );
    CREATE INDEX blog_docs_slug ON blog_docs(root, slug);
    CREATE VIRTUAL TABLE blog_fts USING fts5(title, tags, body, tokenize = 'porter unicode61');
    """,
]
