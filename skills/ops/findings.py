"""A finding: one thing a diagnosis noticed, with its evidence and the usual fix."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Severity = Literal["info", "warning", "error", "critical"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2, "critical": 3}


class Finding(BaseModel):
    id: str
    severity: Severity
    title: str = ""
    evidence: list[str] = Field(default_factory=list)
    fix: str = ""


def worst(findings: list[Finding]) -> int:
    """The highest severity rank among the findings (-1 when there are none)."""
    return max((SEVERITY_RANK[f.severity] for f in findings), default=-1)
