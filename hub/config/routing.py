"""`routing:` room policies, task-class rules and spend caps."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hub.config.base import Section

Policy = Literal["auto", "local", "cloud", "local-only"]


class TaskRule(Section):
    name: str
    route: Literal["local", "cloud"]
    keywords: list[str] = Field(default_factory=list)


class BudgetConfig(Section):
    daily_usd: float = Field(5.0, ge=0)
    monthly_usd: float = Field(50.0, ge=0)


def default_task_rules() -> list[TaskRule]:
    return [
        TaskRule(name="architecture", route="cloud",
                 keywords=["architecture", "design decision", "trade-off", "tradeoff"]),
        TaskRule(name="refactor", route="cloud", keywords=["refactor across", "multi-file", "multiple files"]),
        TaskRule(name="debugging", route="cloud", keywords=["debug", "stack trace", "root cause"]),
        TaskRule(name="codegen", route="local", keywords=["write a function", "generate code", "snippet"]),
        TaskRule(name="writing", route="local", keywords=["draft", "rewrite", "summarise", "summarize"]),
    ]


class RoutingConfig(Section):
    default_policy: Policy = "auto"
    rooms: dict[str, Policy] = Field(default_factory=dict)
    task_rules: list[TaskRule] = Field(default_factory=default_task_rules)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
