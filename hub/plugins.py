"""Skills from outside the repo: installed packages (entry points) and local folders.

The hub's registry is built here, once, for every caller (`Hub.start`, `sovhub skills`, `sovhub
schedule`, `sovhub mcp`): the built-in `skills` package first, then the entry points of the group
`sovhub.skills`, then each folder of `skills.paths`. Plugins use the same `@skill` declaration and
the same checks as built-ins. A plugin that fails to import, declares an invalid skill, or whose
skill or chat command clashes with one already registered (or with a tool name the hub keeps for
itself) is skipped as a whole and recorded in `registry.problems`: a broken plugin never stops the
hub, and never half-loads.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from hub.config import HubConfig
from hub.registry import Skill, SkillProblem, SkillRegistry, SkillSource, module_skills

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "sovhub.skills"
FOLDER_MODULE_PREFIX = "sovhub_folder_"

# Tool names the hub's own surfaces add beside the skills (the chat's hub tools, the MCP bridge's job
# and chat tools, the GPU controls). A plugin skill with one of these names would shadow or break them.
RESERVED_NAMES = frozenset({
    "hub_status", "hub_jobs",                                           # chat (hub.chat.tools)
    "job_status", "job_result", "cancel_job", "list_jobs", "ask", "ask_local",  # MCP bridge
    "gpu_status", "gpu_logs", "gpu_control",                            # MCP bridge: the GPU controls
})


def load_registry(config: HubConfig, *, group: str = ENTRY_POINT_GROUP) -> SkillRegistry:
    """Built-ins, then packages, then folders; problems are recorded, never raised."""
    enabled = set(config.skills.enabled) if config.skills.enabled is not None else None
    registry = SkillRegistry()
    registry.discover("skills", enabled)
    for ep in sorted(entry_points(group=group), key=lambda e: (_dist_name(e), e.name)):
        _load_entry_point(registry, ep, enabled)
    seen_modules: dict[str, Path] = {}
    for index, folder in enumerate(config.skills.paths):
        _load_folder(registry, Path(folder).expanduser(), f"skills.paths[{index}]", enabled, seen_modules)
    return registry


def log_problems(registry: SkillRegistry) -> None:
    for problem in registry.problems:
        log.warning("skill plugin skipped: %s", problem)


# --- packages ----------------------------------------------------------------------------------


def _dist_name(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else ""


def _load_entry_point(registry: SkillRegistry, ep: EntryPoint, enabled: set[str] | None) -> None:
    dist = getattr(ep, "dist", None)
    source = SkillSource("package", dist.name if dist else ep.value, dist.version if dist else None)
    label = f"{source} (entry point {ep.name} = {ep.value})"
    try:
        target = ep.load()
        skills = _skills_of(target)
    except (Exception, SystemExit) as exc:
        registry.problems.append(SkillProblem(label, _reason(exc)))
        return
    if isinstance(skills, str):
        registry.problems.append(SkillProblem(label, skills))
        return
    _add_all(registry, skills, source, label, "skills", enabled)


def _skills_of(target: Any) -> list[Skill] | str:
    """The skills an entry point names: a module (and its submodules), a Skill, or a list of them."""
    if isinstance(target, ModuleType):
        found = module_skills(target, walk=True)
    elif isinstance(target, Skill):
        found = [target]
    elif isinstance(target, list | tuple) and all(isinstance(t, Skill) for t in target):
        found = list(target)
    else:
        return f"names a {type(target).__name__}, not a module, a Skill or a list of Skills"
    return found or "declares no skill (no module-level object made with @skill)"


# --- folders -----------------------------------------------------------------------------------


def _folder_entries(folder: Path) -> list[tuple[str, Path, bool]]:
    """(module name, file, is_package) for each `name.py` and `name/__init__.py`; `_x` and `.x` skipped."""
    out = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(("_", ".")):
            continue
        if entry.is_file() and entry.suffix == ".py" and entry.stem.isidentifier():
            out.append((entry.stem, entry, False))
        elif entry.is_dir() and (entry / "__init__.py").is_file() and entry.name.isidentifier():
            out.append((entry.name, entry / "__init__.py", True))
    return out


def _load_folder(registry: SkillRegistry, folder: Path, config_path: str, enabled: set[str] | None,
                 seen: dict[str, Path]) -> None:
    if not folder.is_dir():
        registry.problems.append(SkillProblem(f"folder {folder}", "not a directory", config_path))
        return
    try:
        entries = _folder_entries(folder)
    except OSError as exc:
        registry.problems.append(SkillProblem(f"folder {folder}", f"cannot list it: {exc.strerror}", config_path))
        return
    for name, file, is_package in entries:
        where = file.parent if is_package else file
        source = SkillSource("folder", str(where))
        label = str(source)
        if name in seen:
            registry.problems.append(SkillProblem(
                label, f"a plugin module named {name!r} was already loaded from {seen[name]}", config_path))
            continue
        seen[name] = where
        try:
            module = _import_file(FOLDER_MODULE_PREFIX + name, file, is_package)
            skills = _skills_of(module)
        except (Exception, SystemExit) as exc:
            registry.problems.append(SkillProblem(label, _reason(exc), config_path))
            continue
        if isinstance(skills, str):
            registry.problems.append(SkillProblem(label, skills, config_path))
            continue
        _add_all(registry, skills, source, label, config_path, enabled)


def _import_file(module_name: str, file: Path, is_package: bool) -> ModuleType:
    """Import a folder plugin under its own name (`sovhub_folder_<name>`), never shadowing an installed
    module; a package's relative imports work. Importing the same file again reuses the module."""
    loaded = sys.modules.get(module_name)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "") == file:
        return loaded
    spec = importlib.util.spec_from_file_location(
        module_name, file, submodule_search_locations=[str(file.parent)] if is_package else None)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        for key in [k for k in sys.modules if k == module_name or k.startswith(module_name + ".")]:
            del sys.modules[key]
        raise
    return module


# --- shared ------------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({Path(exc.filename or '?').name}, line {exc.lineno})"
    text = str(exc).strip() or "(no message)"
    return f"{type(exc).__name__}: {text}"


def _clash(registry: SkillRegistry, skills: Iterable[Skill]) -> str | None:
    """Why this set of skills cannot join the registry, or None."""
    from hub.commands.table import BY_NAME  # the built-in chat commands

    names: set[str] = set()
    commands: dict[str, str] = {}
    taken = {s.command: s.name for s in registry if s.command}
    for item in skills:
        if item.name in RESERVED_NAMES:
            return f"skill name {item.name!r} is reserved for the hub's own tool"
        if item.name in registry:
            return f"skill {item.name!r} is already registered by {registry.source(item.name)}"
        if item.name in names:
            return f"declares two skills named {item.name!r}"
        names.add(item.name)
        if item.command:
            if item.command in BY_NAME:
                return f"skill {item.name!r} claims /{item.command}, a built-in chat command"
            other = taken.get(item.command) or commands.get(item.command)
            if other is not None:
                owner = registry.source(other) if other in registry else "this plugin"
                return f"skill {item.name!r} claims /{item.command}, already the command of {other} ({owner})"
            commands[item.command] = item.name
    return None


def _add_all(registry: SkillRegistry, skills: list[Skill], source: SkillSource, label: str, config_path: str,
             enabled: set[str] | None) -> None:
    chosen = [s for s in skills if enabled is None or s.name in enabled]
    why = _clash(registry, chosen)
    if why is not None:
        registry.problems.append(SkillProblem(label, why, config_path))
        return
    for item in chosen:
        registry.register(item, source)
