"""Skill families keep their config models beside their skills; the config core only registers them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from hub.config import check_config, load_config
from hub.config.base import Section
from hub.config.sections import SectionClash, skill_config, skill_sections
from hub.config.skills import skills_model

REPO = Path(__file__).resolve().parents[1]


def test_the_config_core_imports_no_skill_module():
    for path in sorted((REPO / "hub" / "config").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "skills" or n.startswith("skills.") for n in names), f"{path.name} imports {names}"


def test_each_built_in_family_section_is_its_own_model_read_as_config_skills_family():
    sections = skill_sections()
    assert set(sections) >= {"content", "ops", "web"}
    config = load_config(None, environ={})
    for name, model in sections.items():
        assert model.__module__ == f"skills.{name}.config"
        assert isinstance(getattr(config.skills, name), model)


def test_errors_in_a_family_section_name_the_yaml_path_and_line(tmp_path):
    path = tmp_path / "hub.yaml"
    path.write_text(
        "skills:\n"
        "  web:\n"
        "    searxng_url: ftp://search\n"
        "  content:\n"
        "    tts_engine: vllm-omni\n"
        "    tts_chunk_chars: 4000\n"
        "    colour: blue\n"
        "  ops:\n"
        "    mcp_targets:\n"
        "      other: {kind: docker}\n")
    issues = [str(i) for i in check_config(path, environ={})]
    assert "skills.web.searxng_url: must be an http:// or https:// URL, e.g. http://127.0.0.1:8888 (line 3)" in issues
    assert "skills.content.colour: unknown key (line 7)" in issues
    assert "skills.ops.mcp_targets.other: a docker target needs container and url (line 10)" in issues
    path.write_text("skills:\n  content:\n    tts_engine: vllm-omni\n    tts_chunk_chars: 4000\n")
    [issue] = [str(i) for i in check_config(path, environ={})]  # the family's own cross-field check
    assert issue.startswith("skills.content: tts_chunk_chars 4000 can take longer") and issue.endswith("(line 2)")


def test_a_family_section_reads_its_secrets_from_files_and_the_environment(tmp_path):
    path = tmp_path / "hub.yaml"
    path.write_text("skills:\n  ops:\n    sglang_api_key_env: SGLANG_KEY\n")
    config = load_config(path, environ={"SGLANG_KEY": "k-123", "SOVHUB_SKILLS__WEB__MAX_RESULTS": "3"})
    assert config.skills.ops.sglang_api_key.get_secret_value() == "k-123"
    assert config.skills.web.max_results == 3


def test_a_registered_section_is_validated_as_a_field_of_skills():
    class Toy(Section):
        level: int = 1

    model = skills_model({"toy": Toy})
    assert model().toy.level == 1 and model.model_validate({"toy": {"level": 3}}).toy.level == 3
    with pytest.raises(ValidationError) as info:
        model.model_validate({"toy": {"level": "high"}, "tyo": {}})
    assert {e["loc"] for e in info.value.errors()} == {("toy", "level"), ("tyo",)}


def test_a_section_name_taken_twice_or_by_a_key_of_skills_itself_is_refused():
    class Other(Section):
        pass

    with pytest.raises(SectionClash, match="registered twice"):
        skill_config("content")(Other)
    with pytest.raises(SectionClash, match="key of skills: itself"):
        skill_config("paths")(Other)
    assert skill_sections()["content"].__name__ == "ContentSkillsConfig"


def test_a_family_config_module_imported_first_and_alone_still_ends_up_in_the_config():
    code = ("import skills.ops.config\n"
            "from hub.config import load_config\n"
            "c = load_config(None, environ={})\n"
            "print(type(c.skills.ops).__module__, type(c.skills.content).__module__)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["skills.ops.config", "skills.content.config"]
