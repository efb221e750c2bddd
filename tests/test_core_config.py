"""Config: embedded defaults, the example file, errors with YAML paths and lines, secrets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hub.config import check_config, load_config
from hub.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_embedded_defaults_are_valid():
    assert check_config(None, environ={}) == []


@pytest.mark.parametrize("name", ["hub.example.yaml", "hub.gb10.yaml"])
def test_shipped_configs_are_valid(name):
    path = REPO / "config" / name
    if not path.exists():
        pytest.skip(f"{name} not shipped yet")
    warnings: list = []
    assert [str(i) for i in check_config(path, environ={}, warnings=warnings)] == []
    assert all("is not set" in w.message or "cannot read secret file" in w.message for w in warnings)


def test_misspelt_key_and_negative_memory_are_both_reported_with_lines(tmp_path):
    path = tmp_path / "hub.yaml"
    path.write_text(
        "storage:\n"
        "  data_dir: /tmp/x\n"
        "residents:\n"
        "  comfyui:\n"
        "    kind: image\n"
        "    memory_gb: -3\n"
        "    base_url: http://127.0.0.1:8188\n"
        "    ready:\n"
        "      url: http://127.0.0.1:8188/system_stats\n"
        "llm:\n"
        "  lcoal:\n"
        "    model: x\n"
    )
    issues = [str(i) for i in check_config(path, environ={})]
    assert "residents.comfyui.memory_gb: must be > 0 (line 6)" in issues
    assert "llm.lcoal: unknown key (line 11)" in issues
    assert len(issues) == 2


@pytest.mark.slow  # starts processes: outside the fast tier
def test_config_check_command_prints_ok_or_errors_and_exit_code(tmp_path):
    good = subprocess.run([sys.executable, "-m", "hub.cli", "config", "check"], capture_output=True, text=True)
    assert good.returncode == 0 and good.stdout.strip() == "OK"
    bad_file = tmp_path / "bad.yaml"
    bad_file.write_text("mcp:\n  port: -1\n  tokenz: []\n")
    bad = subprocess.run([sys.executable, "-m", "hub.cli", "config", "check", str(bad_file)],
                         capture_output=True, text=True)
    assert bad.returncode == 1
    assert "mcp.port: must be >= 0 (line 2)" in bad.stdout
    assert "mcp.tokenz: unknown key (line 3)" in bad.stdout


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("storage:\n  data_dir: [unclosed\n")
    issues = check_config(path, environ={})
    assert len(issues) == 1 and "not valid YAML" in issues[0].message and issues[0].line


def test_secrets_come_from_files_and_env_never_literal(tmp_path):
    secret_file = tmp_path / "key"
    secret_file.write_text("sk-from-file\n")
    path = tmp_path / "hub.yaml"
    path.write_text(f"llm:\n  cloud:\n    api_key_file: {secret_file}\nmatrix:\n  password_env: PW_VAR\n")
    config = load_config(path, environ={"PW_VAR": "hunter22"})
    assert config.llm.cloud.api_key.get_secret_value() == "sk-from-file"
    assert config.matrix.password.get_secret_value() == "hunter22"
    assert "sk-from-file" not in repr(config)


def test_missing_secret_env_is_a_clear_error(tmp_path):
    path = tmp_path / "hub.yaml"
    path.write_text("matrix:\n  password_env: NOT_SET_ANYWHERE\n")
    with pytest.raises(ConfigError, match=r"matrix.password_env: environment variable NOT_SET_ANYWHERE is not set"):
        load_config(path, environ={})


def test_env_overrides_nested_keys(tmp_path):
    config = load_config(None, environ={"SOVHUB_MCP__PORT": "9100", "SOVHUB_LLM__CLOUD__MODEL": "claude-x"})
    assert config.mcp.port == 9100
    assert config.llm.cloud.model == "claude-x"
