"""The Matrix bridge's tables (and per-room chat settings). Version N is MIGRATIONS[N-1]; append only."""

MIGRATIONS: list[str] = [
    # 1: inbox for exactly-once replies, events the bot sent, per-room settings
    """
    CREATE TABLE matrix_inbox (
        event_id TEXT PRIMARY KEY,
        room_id TEXT NOT NULL,
        sender TEXT NOT NULL,
        ts INTEGER NOT NULL,
        source TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        received_at REAL NOT NULL,
        done_at REAL,
        outcome TEXT
    );
    CREATE INDEX matrix_inbox_state ON matrix_inbox(state, ts);
    CREATE TABLE matrix_sent (
        event_id TEXT PRIMARY KEY,
        room_id TEXT NOT NULL,
        thread_root TEXT,
        in_reply_to TEXT,
        at REAL NOT NULL
    );
    CREATE INDEX matrix_sent_thread ON matrix_sent(room_id, thread_root);
    CREATE TABLE room_settings (
        bridge TEXT NOT NULL,
        room TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (bridge, room, key)
    );
    """,
]
