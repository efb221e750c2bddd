"""MCP settings and access rules: token checks, role grants, permission hints, the CLI helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bridges.mcp.access import ROLE_GRANT, annotations_for
from hub.config import check_config
from hub.registry import Permission

ROOT = Path(__file__).resolve().parents[1]
SOVHUB = str(Path(sys.executable).with_name("sovhub"))


def issues_for(tmp_path: Path, mcp_yaml: str) -> list[tuple[str, int | None, str]]:
    path = tmp_path / "hub.yaml"
    path.write_text(f"storage:\n  data_dir: {tmp_path}\nmcp:\n{mcp_yaml}")
    environ = {"VIBE_TOKEN": "v" * 24, "SHORT": "abc", "X": "x" * 20, "Y": "y" * 20}
    return [(i.path, i.line, i.message) for i in check_config(path, environ=environ)]


def test_tokens_must_be_long_unique_and_may_come_from_the_environment(tmp_path):
    assert issues_for(tmp_path, "  tokens:\n    - {name: vibe, token_env: VIBE_TOKEN, role: write}\n") == []
    short = issues_for(tmp_path, "  tokens:\n    - {name: vibe, token_env: SHORT}\n")
    assert short[0][0] == "mcp.tokens[0].token" and "at least 16 characters" in short[0][2]
    twice = issues_for(tmp_path, "  tokens:\n    - {name: a, token_env: X}\n    - {name: a, token_env: Y}\n")
    assert twice[0][0] == "mcp" and "token names must be unique: a" in twice[0][2]
    role = issues_for(tmp_path, "  tokens:\n    - {name: a, token_env: X, role: admin}\n")
    assert role[0][0] == "mcp.tokens[0].role"
    inline = issues_for(tmp_path, "  tokens:\n    - {name: a, token: " + "x" * 20 + "}\n")
    assert inline == [("mcp.tokens[0].token", 5, "secrets are not written in the config: use token_file: "
                       "/run/secrets/... or token_env: VARIABLE")]


def test_a_public_address_is_fine_with_a_token(tmp_path):
    assert issues_for(tmp_path, "  host: 0.0.0.0\n  tokens:\n    - {name: a, token_env: X}\n") == []
    assert issues_for(tmp_path, "  host: 0.0.0.0\n  enabled: false\n") == []
    assert issues_for(tmp_path, "  host: ::1\n") == []


def test_roles_grant_permissions_and_only_owner_reaches_destructive():
    assert ROLE_GRANT == {"read": Permission.read, "write": Permission.write, "owner": Permission.destructive}


def test_hints_follow_the_permission_level():
    read, write, destructive = (annotations_for(p) for p in Permission)
    assert (read.read_only_hint, read.destructive_hint, read.idempotent_hint) == (True, False, True)
    assert (write.read_only_hint, write.destructive_hint, write.idempotent_hint) == (False, False, False)
    assert (destructive.read_only_hint, destructive.destructive_hint) == (False, True)


def test_cli_lists_tools_and_makes_tokens(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    config = tmp_path / "hub.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path}\n")
    listed = subprocess.run([SOVHUB, "mcp", "--config", str(config), "--registry", "tests.helpers_skills:test_registry",
                             "tools", "--json"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert listed.returncode == 0, listed.stderr
    tools = {t["name"]: t for t in json.loads(listed.stdout)}
    assert tools["wipe"]["annotations"]["destructiveHint"] is True and "echo" in tools
    made = subprocess.run([SOVHUB, "mcp", "token", "vibe", "--role", "owner"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert made.returncode == 0 and len(made.stdout.strip()) >= 40 and "role: owner" in made.stderr
