"""Launch flags (from `/server_info`) checked against the GB10's known-good set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skills.ops.config import FlagRule
from skills.ops.findings import Finding

TRUTHY = {"1", "true", "yes", "on"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _holds(cond: str, args: Mapping[str, Any], env: Mapping[str, str]) -> bool:
    if cond.startswith("env:"):
        return str(env.get(cond[4:], "")).strip().lower() in TRUTHY
    return bool(args.get(cond))


def _violation(rule: FlagRule, value: Any) -> str | None:
    """Why `value` breaks the rule, or None when it is fine."""
    if rule.equals is not None and value != rule.equals:
        return f"is {value!r}, known-good is {rule.equals!r}"
    if rule.one_of is not None and value not in rule.one_of:
        return f"is {value!r}, known-good is one of {rule.one_of!r}"
    if rule.min is not None or rule.max is not None:
        if value is None:
            return None  # the server picked its own default; nothing to compare
        try:
            number = float(value)
        except (TypeError, ValueError):
            return f"is {value!r}, expected a number"
        if rule.min is not None and number < rule.min:
            return f"is {value!r}, known-good is at least {rule.min:g}"
        if rule.max is not None and number > rule.max:
            return f"is {value!r}, known-good is at most {rule.max:g}"
    return None


def check(server_args: Mapping[str, Any], rules: Mapping[str, FlagRule],
          env: Mapping[str, str] | None = None) -> list[Finding]:
    """One warning per flag that differs from the known-good GB10 recipe."""
    env = env or {}
    findings = []
    for name, rule in rules.items():
        if not all(_holds(c, server_args, env) for c in rule.when):
            continue
        value = server_args.get(name)
        why = _violation(rule, value)
        if why is None:
            continue
        target = rule.equals if rule.equals is not None else (rule.one_of or [None])[0]
        if target is True:
            fix = f"launch with {_flag(name)}"
        elif target is not None:
            fix = f"launch with {_flag(name)} {target}"
        else:
            bound = rule.max if rule.max is not None and value is not None and float(value) > rule.max else rule.min
            fix = f"launch with {_flag(name)} {bound:g}" if bound is not None else f"check {_flag(name)}"
        findings.append(Finding(
            id=f"flag_{name}", severity="warning", title=f"{_flag(name)} {why}" + (f": {rule.why}" if rule.why else ""),
            evidence=[f"{name} = {value!r}"], fix=fix))
    return findings
