"""Config that cannot hurt: inline secrets refused with the line and the alternative; alias bombs,
deep nesting, huge files and endless secret files each one clear error; `sovhub run` and
`sovhub mcp` print it as one error, never a traceback."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hub.cli.main import app
from hub.config import check_config
from hub.config.guard import MAX_DEPTH

BILLION_LAUGHS = "lol0: &l0 lol\n" + "".join(
    f"lol{i}: &l{i} [{', '.join(['*l' + str(i - 1)] * 9)}]\n" for i in range(1, 10))


def _issues(tmp_path, text: str, environ: dict | None = None) -> list[str]:
    path = tmp_path / "hub.yaml"
    path.write_text(text)
    return [str(i) for i in check_config(path, environ=environ or {})]


@pytest.mark.parametrize(("yaml_text", "where", "line"), [
    ("llm:\n  cloud:\n    api_key: sk-ant-live\n", "llm.cloud.api_key", 3),
    ("matrix:\n  password: hunter2\n", "matrix.password", 2),
    ("matrix:\n  access_token: syt_abc\n", "matrix.access_token", 2),
    ("status:\n  token: s3cret-s3cret\n", "status.token", 2),
    ("mcp:\n  tokens:\n    - name: vibe\n      token: 0123456789abcdef0123\n", "mcp.tokens[0].token", 4),
])
def test_a_secret_written_in_the_yaml_is_refused_with_its_line_and_the_alternatives(tmp_path, yaml_text, where,
                                                                                     line):
    [issue] = _issues(tmp_path, yaml_text)
    key = where.rsplit(".", 1)[1]
    assert issue.startswith(f"{where}: secrets are not written in the config: use {key}_file: /run/secrets/... "
                            f"or {key}_env: VARIABLE")
    assert issue.endswith(f"(line {line})")
    assert "hunter2" not in issue and "sk-ant-live" not in issue  # the refusal does not repeat the secret


def test_empty_secrets_and_secrets_from_files_and_the_environment_are_fine(tmp_path):
    secret = tmp_path / "key"
    secret.write_text("sk-from-file\n")
    text = f"status:\n  token: ''\nllm:\n  cloud:\n    api_key_file: {secret}\nmatrix:\n  password_env: PW\n"
    assert _issues(tmp_path, text, {"PW": "x"}) == []


def test_a_billion_laughs_file_is_one_error(tmp_path):
    [issue] = _issues(tmp_path, BILLION_LAUGHS)
    assert "expands to more than 50,000 values" in issue and issue.endswith(")")


@pytest.mark.parametrize("shape", ["flow", "mapping"])
def test_five_thousand_deep_nesting_is_one_error(tmp_path, shape):
    deep = "a: " + ("[" * 5000 + "]" * 5000 if shape == "flow" else "{a: " * 5000 + "}" * 5000) + "\n"
    expected = f"{tmp_path / 'hub.yaml'}: the YAML nests deeper than {MAX_DEPTH} levels (line 1)"
    assert _issues(tmp_path, deep) == [expected]


def test_a_config_past_the_size_limit_or_not_a_file_is_one_error(tmp_path):
    big = tmp_path / "hub.yaml"
    big.write_text("# padding\n" * 200_000)
    assert [str(i) for i in check_config(big)] == [f"{big}: the config {big} is larger than 1 MiB"]
    assert [str(i) for i in check_config("/dev/zero")] == ["/dev/zero: the config /dev/zero is not a regular file"]


def test_dev_zero_a_fifo_or_a_huge_file_as_a_secret_file_is_one_error(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # nobody writes to it: reading it would block forever
    huge = tmp_path / "huge"
    huge.write_bytes(b"k" * (1 << 20))
    for target, problem in (("/dev/zero", "is not a regular file"), (fifo, "is not a regular file"),
                            (huge, "is larger than 64 KiB")):
        [issue] = _issues(tmp_path, f"llm:\n  cloud:\n    api_key_file: {target}\n")
        assert issue == f"llm.cloud.api_key_file: secret file {target} {problem} (line 3)"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#,? \n\t0")), max_size=300))
def test_any_text_is_a_list_of_issues_never_an_exception(text):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "hub.yaml")
        with open(path, "w") as f:
            f.write(text)
        issues = check_config(path, environ={})
    assert all(isinstance(str(i), str) for i in issues)


@pytest.mark.parametrize("command", [["run"], ["mcp"]])
@pytest.mark.parametrize("bad", ["laughs", "deep", "inline", "zero"])
def test_sovhub_run_and_mcp_print_one_error_and_no_traceback(tmp_path, command, bad):
    text = {"laughs": BILLION_LAUGHS, "deep": "a: " + "[" * 5000 + "]" * 5000 + "\n",
            "inline": "llm:\n  cloud:\n    api_key: sk-ant-live\n",
            "zero": "llm:\n  cloud:\n    api_key_file: /dev/zero\n"}[bad]
    config = tmp_path / "hub.yaml"
    config.write_text(text)
    out = CliRunner().invoke(app, [*command, "--config", str(config)])
    assert out.exit_code == 1, out.output
    assert out.output.startswith("error: invalid config:") and out.output.count("error:") == 1
    assert len(out.output.strip().splitlines()) == 2  # the heading and the one issue
    assert "Traceback" not in out.output and "sk-ant-live" not in out.output
