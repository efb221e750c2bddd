"""The CLI's read side: `sovhub status` and `sovhub jobs` read the hub's SQLite state."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _sovhub(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SOVHUB_STORAGE__DATA_DIR": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_status_shows_spend_caps_and_schedules(tmp_path):
    added = _sovhub(tmp_path, "schedule", "add", "nightly", "0 6 * * *", "search_blog", "query=gb10")
    assert added.returncode == 0, added.stderr
    out = _sovhub(tmp_path, "status", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["spend"] == {"today_usd": 0, "month_usd": 0, "daily_cap_usd": 5.0, "monthly_cap_usd": 50.0}
    assert [s["name"] for s in data["schedules"]] == ["nightly"]
    text = _sovhub(tmp_path, "status")
    assert "schedule nightly: search_blog at 0 6 * * * (UTC)" in text.stdout


def test_a_user_error_is_one_clear_line_not_a_traceback(tmp_path):
    out = _sovhub(tmp_path, "skill", "run", "search_blog", "limit=999")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "error: invalid arguments for search_blog" in out.stderr and "limit" in out.stderr


def test_jobs_lists_the_rejected_run_with_its_error(tmp_path):
    _sovhub(tmp_path, "skill", "run", "search_blog", "limit=999")
    out = _sovhub(tmp_path, "jobs")
    assert out.returncode == 0 and "search_blog" in out.stdout and "rejected" in out.stdout


def test_status_and_jobs_need_no_chat_secrets(tmp_path):
    """A config whose Matrix password comes from a variable this shell does not have still reads state."""
    config = tmp_path / "hub.yaml"
    config.write_text(f"""
storage:
  data_dir: {tmp_path}
matrix:
  enabled: true
  homeserver: http://127.0.0.1:9
  user_id: "@bot:example.org"
  password_env: SOVHUB_TEST_UNSET_MATRIX_PASSWORD
""")
    env = {k: v for k, v in os.environ.items() if k != "SOVHUB_TEST_UNSET_MATRIX_PASSWORD"}
    for args in (("status",), ("jobs",), ("status", "--json")):
        out = subprocess.run([sys.executable, "-m", "hub.cli", *args, "--config", str(config)],
                             capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0 and "Traceback" not in out.stderr, (args, out.stderr)
    run = subprocess.run([sys.executable, "-m", "hub.cli", "run", "--config", str(config)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 1 and "SOVHUB_TEST_UNSET_MATRIX_PASSWORD" in run.stderr  # running still needs it
