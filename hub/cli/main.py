"""Entry point for the `sovhub` command. Command groups of bridges come from entry points."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hub.cli.common import STATE, console, fail, get_config, get_state_config, parse_assignments, run_async
from hub.config import check_config
from hub.errors import HubError

log = logging.getLogger(__name__)

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="sovhub: a self-hosted agent hub for one sovereign AI box.")
config_app = typer.Typer(no_args_is_help=True, help="Check the configuration.")
skill_app = typer.Typer(no_args_is_help=True, help="Run one skill.")
app.add_typer(config_app, name="config")
app.add_typer(skill_app, name="skill")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="config YAML (or $SOVHUB_CONFIG)")]


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False) -> None:
    STATE["debug"] = debug


@app.command()
def run(config: ConfigOpt = None) -> None:
    """Run the hub with every enabled bridge until Ctrl-C."""
    from hub.serve import exit_process, run_forever

    run_async(run_forever(get_config(config)))
    exit_process(0)  # stopped cleanly: skip the interpreter's slow teardown (SIGTERM well under 1 s)


@app.command()
def demo(
    data_dir: Annotated[Path | None, typer.Option(help="where the demo keeps its state")] = None,
    script: Annotated[Path | None, typer.Option(help="read chat lines from a file instead of the terminal")] = None,
    mcp_port: Annotated[int, typer.Option(help="MCP server port (0 = any free port)")] = 8002,
    status_port: Annotated[int, typer.Option(help="status page port (0 = any free port)")] = 8003,
    api_port: Annotated[int, typer.Option(help="OpenAI/Anthropic-compatible API port (0 = any free port)")] = 8004,
    load_seconds: Annotated[float, typer.Option(help="simulated model start time (the GB10 takes minutes)")] = 2.0,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="approve destructive skills without asking")] = False,
) -> None:
    """The main job on embedded defaults: a simulated GB10, no accounts, no GPU."""
    from hub.demo import run_demo

    run_async(run_demo(data_dir=data_dir, script=script, mcp_port=mcp_port, status_port=status_port,
                       api_port=api_port, load_seconds=load_seconds, yes=yes))


@config_app.command("check")
def config_check(path: Annotated[Path | None, typer.Argument(help="config YAML; default: embedded")] = None) -> None:
    """Print OK, or every error with its YAML path and line (exit 1)."""
    warnings: list = []
    issues = check_config(path, warnings=warnings)
    if not issues:
        issues = _plugin_issues(path)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not issues:
        print("OK")
        return
    for issue in issues:
        print(issue)
    raise typer.Exit(1)


def _plugin_issues(path: Path | None) -> list:
    """The skill plugins a valid config would load that are broken (the hub would skip them)."""
    from hub.config import ConfigIssue
    from hub.config.loader import lenient_config
    from hub.plugins import load_registry

    config = lenient_config(path)
    if config is None:
        return []
    return [ConfigIssue(p.config_path, f"{p.source}: {p.reason} (the hub skips it)")
            for p in load_registry(config).problems]


@app.command("skills")
def list_skills(config: ConfigOpt = None) -> None:
    """The skill registry: what chat, tools, MCP and cron can call."""
    from hub.plugins import load_registry

    registry = load_registry(get_config(config))
    table = Table("skill", "permission", "resident", "command", "source", "description")
    for s in registry:
        table.add_row(s.name, s.permission.name, s.resident or "-", f"/{s.command}" if s.command else "-",
                      str(registry.source(s.name)), s.description.splitlines()[0])
    console.print(table)
    for problem in registry.problems:
        console.print(f"skipped {problem}", highlight=False, markup=False)


@skill_app.command("run")
def skill_run(
    name: str,
    args: Annotated[list[str] | None, typer.Argument(help="key=value arguments")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="approve a destructive skill")] = False,
    config: ConfigOpt = None,
) -> None:
    """Run a skill through the hub (the same path chat, MCP and cron use)."""
    from hub.cli.skill_run import run_one

    run_async(run_one(get_config(config), name, parse_assignments(args or []), yes))


@app.command()
def status(config: ConfigOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Resident model, queue, swaps, recent jobs and spend."""
    from hub.cli.status import show_status

    run_async(show_status(get_state_config(config), as_json))


@app.command()
def jobs(
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    state: Annotated[str | None, typer.Option("--status", help="only jobs in this state")] = None,
    job_id: Annotated[str | None, typer.Option("--id", help="one job with its events")] = None,
) -> None:
    """Recent jobs, or one job with its events."""
    from hub.cli.status import show_jobs

    run_async(show_jobs(get_state_config(config), limit, state, job_id))


@app.command()
def doctor(
    compose: Annotated[Path | None, typer.Option(help="the compose file (default: compose/compose.yaml)")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="hub config (default: compose's)")] = None,
    meminfo: Annotated[str | None, typer.Option(help="meminfo file (default: residents.memory_guard.meminfo)")] = None,
    docker_url: Annotated[str | None, typer.Option("--docker", help="Docker engine URL (default: DOCKER_HOST)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check the GB10 stack before the first `up` and after any change: one line per check, and the fix.

    Exit status 1 when any check fails (warnings alone exit 0)."""
    from hub.doctor.report import render, to_json, worst
    from hub.doctor.run import DoctorInputs, default_compose
    from hub.doctor.run import run as run_doctor

    checks = run_doctor(DoctorInputs(compose=compose or default_compose(), config=config, meminfo=meminfo,
                                     docker_url=docker_url))
    print(to_json(checks) if as_json else render(checks))
    if worst(checks) == "fail":
        raise typer.Exit(1)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context, name: str,
          as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = True) -> None:
    """Run a benchmark (`gpu`, `turn`, `mcp`, ...); options are passed as --key value."""
    runner = _bench_runner(name)
    options = _bench_options(runner, list(ctx.args))
    try:
        result = runner(**options)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
    except HubError as exc:
        fail(str(exc))
    print(json.dumps(result, indent=None if as_json else 2, default=str))
    if isinstance(result, dict) and result.get("ok") is False:
        raise typer.Exit(1)  # e.g. a scheduling policy stalled: the figures are not to be trusted


def _bench_runner(name: str):
    import importlib
    import importlib.util

    for ep in entry_points(group="sovhub.bench"):
        if ep.name == name:
            return ep.load()
    if not name.isidentifier() or importlib.util.find_spec(f"hub.bench.{name}") is None:
        fail(f"unknown benchmark {name!r}")
    return importlib.import_module(f"hub.bench.{name}").run


def _bench_options(runner, args: list[str]) -> dict[str, Any]:
    params = inspect.signature(runner).parameters
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            fail(f"unexpected argument {arg!r}")
        key = arg[2:].replace("-", "_")
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            value = args[i + 1]
            i += 2
        else:
            value, i = "true", i + 1
        if key not in params:
            fail(f"unknown option --{key} (options: {', '.join('--' + p for p in params)})")
        out[key] = _coerce(value, params[key].annotation, params[key].default)
    return out


def _coerce(value: str, annotation: Any, default: Any) -> Any:
    kind = annotation if isinstance(annotation, type) else type(default) if default is not None else str
    if isinstance(annotation, str):
        kind = {"int": int, "float": float, "bool": bool, "str": str}.get(annotation.split(" ")[0], str)
    try:
        if kind is bool:
            return value.lower() in ("1", "true", "yes", "on")
        return kind(value)
    except (TypeError, ValueError):
        fail(f"bad value {value!r}")


def _add_plugin_commands() -> None:
    for ep in entry_points(group="sovhub.cli"):
        target = ep.load()
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=ep.name)
        else:
            app.command(name=ep.name)(target)


def _add_hub_groups() -> None:
    import importlib

    for module_name, group in (("hub.cli.schedule", "schedule"), ("hub.cli.gpu", "gpu")):
        app.add_typer(importlib.import_module(module_name).app, name=group)


_add_hub_groups()
_add_plugin_commands()


def main() -> None:
    app()
