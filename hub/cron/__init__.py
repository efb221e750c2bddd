"""Scheduled skill runs: cron, interval and one-shot timetables kept in SQLite, fired by APScheduler."""
