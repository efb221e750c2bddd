"""The core's tables. Version N is MIGRATIONS[N-1]; append, never edit."""

MIGRATIONS: list[str] = [
    # 1: jobs, conversations, schedules, costs, idempotency, key-value state
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        skill TEXT NOT NULL,
        params TEXT NOT NULL,
        status TEXT NOT NULL,
        context TEXT NOT NULL,
        origin TEXT NOT NULL,
        user TEXT,
        parent_id TEXT,
        resident TEXT,
        job_class TEXT NOT NULL DEFAULT 'skill',
        priority INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        error TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL
    );
    CREATE INDEX jobs_status ON jobs(status, created_at);
    CREATE TABLE job_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL REFERENCES jobs(id),
        at REAL NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX job_events_job ON job_events(job_id, id);
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        bridge TEXT NOT NULL,
        room TEXT NOT NULL,
        thread TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        summary TEXT,
        active INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX conversations_key ON conversations(bridge, room, thread, active);
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id),
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        at REAL NOT NULL,
        route TEXT,
        tokens INTEGER,
        context_id TEXT
    );
    CREATE INDEX messages_conv ON messages(conversation_id, id);
    CREATE TABLE schedules (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        skill TEXT NOT NULL,
        params TEXT NOT NULL DEFAULT '{}',
        trigger TEXT NOT NULL,
        timezone TEXT NOT NULL DEFAULT 'UTC',
        room TEXT,
        enabled INTEGER NOT NULL DEFAULT 1,
        source TEXT NOT NULL DEFAULT 'runtime',
        created_at REAL NOT NULL,
        last_run_at REAL,
        next_run_at REAL
    );
    CREATE TABLE schedule_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        schedule_id TEXT NOT NULL,
        job_id TEXT,
        started_at REAL NOT NULL,
        finished_at REAL,
        status TEXT NOT NULL,
        error TEXT
    );
    CREATE TABLE costs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cache_write_tokens INTEGER NOT NULL DEFAULT 0,
        cache_read_tokens INTEGER NOT NULL DEFAULT 0,
        usd REAL NOT NULL DEFAULT 0,
        origin TEXT,
        context_id TEXT,
        room TEXT
    );
    CREATE INDEX costs_at ON costs(at);
    CREATE TABLE processed_events (
        source TEXT NOT NULL,
        event_id TEXT NOT NULL,
        at REAL NOT NULL,
        outcome TEXT,
        PRIMARY KEY (source, event_id)
    );
    CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    # 2: a cloud call's spend reservation is its cost row, written before the call (pending = 1) and
    # settled to the real usage after; shared by every process on this database, kept across crashes
    """
    ALTER TABLE costs ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
    """,
    # 3: which client (Matrix user, MCP or API token name) each cost row is for: spend per client
    """
    ALTER TABLE costs ADD COLUMN client TEXT;
    CREATE INDEX costs_client ON costs(client, at);
    """,
]
