"""`sovhub schedule add|list|rm|pause|resume` on the hub's SQLite file, with one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hub.cli import schedule as schedule_cli
from hub.cli.main import app
from tests.test_cron import registry


@pytest.fixture
def cli(tmp_path, monkeypatch):
    config = tmp_path / "hub.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path}\n")
    monkeypatch.setattr(schedule_cli, "load_registry", lambda cfg: registry())
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["schedule", *args, "--config", str(config)])

    return invoke


def test_add_list_pause_resume_and_rm_edit_the_schedules(cli):
    out = cli("add", "nightly", "0 6 * * *", "echo", "text=latest", "times=2", "--tz", "Europe/Paris",
              "--room", "!x:y")
    assert out.exit_code == 0, out.output
    assert out.output.startswith("added nightly: echo cron '0 6 * * *' (Europe/Paris); next run ")
    assert "06:00:00 CET" in out.output and "it takes effect when the hub runs" in out.output

    listed = json.loads(cli("list", "--json").output)
    assert [(s["name"], s["state"], s["params"], s["room"], s["trigger"]) for s in listed] == [
        ("nightly", "active", {"text": "latest", "times": 2}, "!x:y", {"kind": "cron", "cron": "0 6 * * *"})]
    table = cli("list").output
    assert "nightly" in table and "text=latest" in table

    assert cli("pause", "nightly").output.startswith("paused nightly")
    assert json.loads(cli("list", "--json").output)[0]["state"] == "paused"
    assert cli("resume", "nightly").output.startswith("resumed nightly; next run ")
    assert cli("rm", "nightly").output.startswith("removed nightly")
    assert json.loads(cli("list", "--json").output) == []


@pytest.mark.parametrize(("args", "message"), [
    (("bad", "0 6 * *", "echo", "text=x"),
     "error: invalid cron expression '0 6 * *': it has 4 field(s), expected 5"),
    (("bad", "0 6 * * *", "render_podcast", "article=latest"), "error: unknown skill 'render_podcast' (known: "),
    (("bad", "0 6 * * *", "echo", "times=3"), "error: invalid arguments for echo: text: Field required"),
    (("bad", "0 6 * * *", "echo", "text"), "error: expected key=value for the skill's arguments, got 'text'"),
    (("bad", "0 6 * * *", "echo", "text=x", "--tz", "Paris"), "error: unknown time zone 'Paris'"),
])
def test_bad_input_is_one_clear_line_and_creates_nothing(cli, args, message):
    out = cli("add", *args)
    assert out.exit_code == 1
    assert out.output.strip().startswith(message), out.output
    assert len(out.output.strip().splitlines()) == 1
    assert json.loads(cli("list", "--json").output) == []


def test_unknown_names_are_refused_clearly(cli):
    out = cli("pause", "ghost")
    assert out.exit_code == 1 and "no schedule named 'ghost' (there are none)" in out.output
