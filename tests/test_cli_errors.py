"""A bad config or data directory is one clear line from every CLI command, never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hub.cli.main import app


@pytest.mark.parametrize(("yaml_text", "args", "message"), [
    ("bogus: 1\n", ("schedule", "add", "x", "0 6 * * *", "echo", "text=x"),
     "error: invalid config:\n  bogus: unknown key (line 1)"),
    ("storage:\n  data_dir: /proc/sovhub-nope\n", ("schedule", "list"),
     "error: cannot create the data directory /proc/sovhub-nope: No such file or directory; check storage.data_dir"),
])
def test_a_config_error_is_a_clear_message_and_exit_1(tmp_path, yaml_text, args, message):
    config = tmp_path / "hub.yaml"
    config.write_text(yaml_text)
    out = CliRunner().invoke(app, [*args, "--config", str(config)])
    assert out.exit_code == 1, out.output
    assert out.output.strip() == message
    assert "Traceback" not in out.output
