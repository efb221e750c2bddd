"""Columns and indexes the schedules service adds to the core's `schedules` tables. Append only."""

MIGRATIONS: list[str] = [
    # 1: misfire grace, definition version (for reloads), last outcome, run <-> context link
    """
    ALTER TABLE schedules ADD COLUMN grace_s REAL;
    ALTER TABLE schedules ADD COLUMN updated_at REAL NOT NULL DEFAULT 0;
    ALTER TABLE schedules ADD COLUMN created_by TEXT;
    ALTER TABLE schedules ADD COLUMN last_status TEXT;
    ALTER TABLE schedule_runs ADD COLUMN context_id TEXT;
    ALTER TABLE schedule_runs ADD COLUMN scheduled_for REAL;
    CREATE INDEX schedule_runs_schedule ON schedule_runs(schedule_id, id);
    CREATE INDEX schedule_runs_context ON schedule_runs(context_id);
    """,
    # 2: who paused a schedule (runtime | config), so `enabled: true` in the config undoes only its own pause
    """
    ALTER TABLE schedules ADD COLUMN paused_by TEXT;
    UPDATE schedules SET paused_by = 'runtime' WHERE enabled = 0;
    """,
]
