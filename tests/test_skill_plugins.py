"""Skill plugins: folders (`skills.paths`) and installed packages (entry points `sovhub.skills`).

The same declaration and checks as built-ins; a broken plugin is reported and skipped as a whole
(the hub still starts); clashes are refused; every skill knows its source.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from typer.testing import CliRunner

from hub.config import load_config
from hub.context import Context
from hub.core import Hub
from hub.plugins import RESERVED_NAMES, _add_all, load_registry
from hub.registry import Skill, SkillRegistry, SkillSource, skill

GOOD = '''
from pydantic import BaseModel
from hub.registry import skill

class P(BaseModel):
    text: str

class R(BaseModel):
    shout: str

@skill(name="shout", description="Upper-case a text", params=P, result=R, command="shout")
async def shout(run, params: P) -> R:
    return R(shout=params.text.upper())
'''

PACKAGE_INIT = '''
from .impl import count_words  # a relative import inside a folder package
'''

PACKAGE_IMPL = '''
from pydantic import BaseModel
from hub.registry import skill

class P(BaseModel):
    text: str

class R(BaseModel):
    words: int

@skill(name="count_words", description="Count words", params=P, result=R)
async def count_words(run, params: P) -> R:
    return R(words=len(params.text.split()))
'''

BROKEN = {
    "syntax.py": "def broken(:\n",
    "missing_dep.py": "import gitea_client_that_is_not_installed\n",
    "bad_name.py": GOOD.replace('name="shout"', 'name="Shout-It"').replace('command="shout"', 'command="s1"'),
    "sync_handler.py": GOOD.replace("async def shout", "def shout").replace('"shout"', '"shout_sync"'),
    "clash_builtin.py": GOOD.replace('name="shout"', 'name="publish_article"').replace('command="shout"',
                                                                                       "command=None"),
    "reserved.py": GOOD.replace('name="shout"', 'name="ask_local"').replace('command="shout"', "command=None"),
    "command_clash.py": GOOD.replace('name="shout"', 'name="yell"').replace('command="shout"', 'command="status"'),
    "second_shout.py": GOOD.replace('command="shout"', 'command="shout2"'),
    "nothing.py": "X = 1\n",
    "_private.py": "raise RuntimeError('never imported')\n",
}


def plugin_folder(root: Path) -> Path:
    folder = root / "plugins"
    (folder / "wordy").mkdir(parents=True)
    (folder / "wordy" / "__init__.py").write_text(PACKAGE_INIT)
    (folder / "wordy" / "impl.py").write_text(PACKAGE_IMPL)
    (folder / "a_shout.py").write_text(GOOD)  # sorts first, so later `shout` plugins clash with it
    for name, text in BROKEN.items():
        (folder / name).write_text(text)
    (folder / "notes.txt").write_text("not a plugin")
    return folder


def config_with(tmp_path: Path, *paths: Path, **skills):
    return load_config(None, environ={}, overrides={
        "storage": {"data_dir": str(tmp_path / "data")},
        "skills": {"paths": [str(p) for p in paths], **skills},
    })


def test_folder_plugins_load_beside_built_ins_and_each_broken_one_is_skipped_with_its_reason(tmp_path):
    folder = plugin_folder(tmp_path)
    registry = load_registry(config_with(tmp_path, folder, tmp_path / "nowhere"))
    assert str(registry.source("shout")) == f"folder {folder / 'a_shout.py'}"
    assert str(registry.source("count_words")) == f"folder {folder / 'wordy'}"
    assert str(registry.source("publish_article")) == "built-in"
    assert registry.by_command("shout").name == "shout"
    reasons = {Path(p.source.removeprefix("folder ")).name: p.reason for p in registry.problems}
    assert reasons["syntax.py"].startswith("SyntaxError: ") and "line 1" in reasons["syntax.py"]
    assert reasons["missing_dep.py"] == "ModuleNotFoundError: No module named 'gitea_client_that_is_not_installed'"
    assert "'Shout-It' must be snake_case" in reasons["bad_name.py"]
    assert "the handler must be an `async def` function" in reasons["sync_handler.py"]
    assert reasons["clash_builtin.py"] == "skill 'publish_article' is already registered by built-in"
    assert reasons["reserved.py"] == "skill name 'ask_local' is reserved for the hub's own tool"
    assert reasons["command_clash.py"] == "skill 'yell' claims /status, a built-in chat command"
    assert reasons["second_shout.py"] == f"skill 'shout' is already registered by folder {folder / 'a_shout.py'}"
    assert reasons["nothing.py"].startswith("declares no skill")
    assert reasons["nowhere"] == "not a directory"
    assert "_private.py" not in reasons and "notes.txt" not in reasons
    assert {p.config_path for p in registry.problems} == {"skills.paths[0]", "skills.paths[1]"}
    for name in ("yell", "shout_sync", "ask_local"):
        assert name not in registry


async def test_the_hub_starts_with_broken_plugins_and_runs_the_good_ones(tmp_path, caplog):
    config = config_with(tmp_path, plugin_folder(tmp_path))
    hub = await Hub.start(config, components=(), resume_jobs=False)
    try:
        result = await hub.run_skill("shout", {"text": "hi"}, Context.new("cli"))
        assert result.shout == "HI"
        assert (await hub.run_skill("count_words", {"text": "a b c"}, Context.new("cli"))).words == 3
        skipped = (await hub.status())["skills_skipped"]
        assert any("syntax.py: SyntaxError" in line for line in skipped) and len(skipped) == len(hub.skills.problems)
    finally:
        await hub.stop()
    assert "skill plugin skipped: folder" in caplog.text and "syntax.py" in caplog.text


def test_skills_enabled_filters_plugins_too(tmp_path):
    registry = load_registry(config_with(tmp_path, plugin_folder(tmp_path), enabled=["count_words"]))
    assert [s.name for s in registry] == ["count_words"]


def write_dist(site: Path, name: str, version: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """An installed distribution as pip leaves it: a .dist-info with entry_points.txt, and its modules."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[sovhub.skills]\n{lines}")
    for module, text in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(text))


def test_package_plugins_come_from_entry_points_and_name_their_distribution(tmp_path, monkeypatch):
    site = tmp_path / "site"
    write_dist(site, "sovhub-shout", "1.2.0", {"shout": "ep_shout_mod"},
               {"ep_shout_mod": GOOD})
    write_dist(site, "sovhub-broken", "0.3", {"broken": "ep_broken_mod", "odd": "ep_odd_mod:VALUE"},
               {"ep_broken_mod": "raise RuntimeError('needs GITEA_URL')\n", "ep_odd_mod": "VALUE = 42\n"})
    write_dist(site, "sovhub-single", "2.0", {"one": "ep_single_mod:count_words"}, {"ep_single_mod": PACKAGE_IMPL})
    monkeypatch.syspath_prepend(str(site))
    registry = load_registry(config_with(tmp_path))
    assert registry.source("shout") == SkillSource("package", "sovhub-shout", "1.2.0")
    assert str(registry.source("count_words")) == "package sovhub-single 2.0"
    problems = {p.source: p.reason for p in registry.problems}
    assert problems == {
        "package sovhub-broken 0.3 (entry point broken = ep_broken_mod)": "RuntimeError: needs GITEA_URL",
        "package sovhub-broken 0.3 (entry point odd = ep_odd_mod:VALUE)":
            "names a int, not a module, a Skill or a list of Skills",
    }


def test_config_check_and_sovhub_skills_report_broken_plugins(tmp_path):
    from hub.cli.main import app

    folder = plugin_folder(tmp_path)
    config = tmp_path / "hub.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path / 'data'}\nskills:\n  paths: [{folder}]\n")
    runner = CliRunner()
    checked = runner.invoke(app, ["config", "check", str(config)])
    assert checked.exit_code == 1
    assert f"skills.paths[0]: folder {folder / 'syntax.py'}: SyntaxError" in checked.output
    assert "(the hub skips it)" in checked.output
    listed = runner.invoke(app, ["skills", "--config", str(config)], env={"COLUMNS": "300"})
    assert listed.exit_code == 0
    assert f"folder {folder / 'a_shout.py'}" in listed.output
    assert f"skipped folder {folder / 'missing_dep.py'}: ModuleNotFoundError" in listed.output
    good = tmp_path / "good.yaml"
    good.write_text(f"storage:\n  data_dir: {tmp_path / 'data'}\n")
    assert runner.invoke(app, ["config", "check", str(good)]).output.strip() == "OK"


def test_reserved_names_cover_every_tool_the_hub_adds_beside_the_skills():
    from bridges.mcp.hub_tools import HUB_TOOL_NAMES
    from hub.chat.tools import HUB_TOOLS

    assert set(HUB_TOOL_NAMES) | set(HUB_TOOLS) == RESERVED_NAMES


class _P(BaseModel):
    text: str = ""


async def _handler(run, params):
    return params


@pytest.mark.parametrize(("change", "message"), [
    ({"name": "x"}, "snake_case"),
    ({"description": "  "}, "needs a description"),
    ({"params": dict}, "params must be a pydantic BaseModel class"),
    ({"handler": lambda run, params: params}, "`async def`"),
    ({"timeout_s": 0}, "timeout_s must be > 0"),
    ({"command": "/slash"}, "without the slash"),
    ({"permission": "write"}, "permission must be a Permission"),
])
def test_a_bad_declaration_fails_where_it_is_made(change, message):
    kwargs = {"name": "fine", "description": "ok", "params": _P, "result": _P, **change}
    handler = kwargs.pop("handler", _handler)
    with pytest.raises(ValueError, match=message):
        skill(**kwargs)(handler)


# -- the clash policy, on random plugin sets --------------------------------------------------------
NAMES = st.sampled_from(["alpha", "beta", "gamma", "delta", "publish_article", "ask", "hub_status", "echo"])
COMMANDS = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "status", "image", "help"]))
PLUGINS = st.lists(st.lists(st.tuples(NAMES, COMMANDS), min_size=1, max_size=4), min_size=1, max_size=6)

_BUILT_IN = SkillRegistry()
_BUILT_IN.discover("skills")


def _registry_with_built_ins() -> SkillRegistry:
    registry = SkillRegistry()
    for item in _BUILT_IN:
        registry.register(item)
    return registry


@settings(max_examples=300, deadline=None)
@given(PLUGINS)
def test_each_plugin_joins_whole_or_not_at_all_and_names_and_commands_stay_unique(plugins):
    from hub.commands.table import BY_NAME

    registry = _registry_with_built_ins()
    declared = []
    for i, entries in enumerate(plugins):
        skills = [Skill(name=n, description="d", params=_P, result=_P, handler=_handler, command=c)
                  for n, c in entries]
        declared.append(skills)
        _add_all(registry, skills, SkillSource("folder", f"/p/{i}.py"), f"folder /p/{i}.py", "skills.paths[0]", None)
    problems = {p.source for p in registry.problems}
    for i, skills in enumerate(declared):
        joined = [registry.source(s.name) == SkillSource("folder", f"/p/{i}.py")
                  and registry.get(s.name) is s for s in skills if s.name in registry]
        whole = len(joined) == len(skills) and all(joined)
        assert whole != (f"folder /p/{i}.py" in problems)  # all in, or skipped and reported
        assert not any(joined) or whole
    assert all(registry.get(s.name) is s for s in _BUILT_IN)  # built-ins are never displaced
    assert not RESERVED_NAMES & {s.name for s in registry}
    commands = [s.command for s in registry if s.command]
    assert len(commands) == len(set(commands))
    plugin_commands = {s.command for s in registry if s.command and str(registry.source(s.name)) != "built-in"}
    assert not plugin_commands & set(BY_NAME)
