"""Typed errors. Each one's message is written for the person who caused it."""

from __future__ import annotations


class HubError(Exception):
    """A user-facing error: its message is shown as is (one clear line, no traceback)."""


class ConfigError(HubError):
    pass


class StoreError(HubError):
    pass


class UnknownSkill(HubError):
    pass


class InvalidParams(HubError):
    def __init__(self, skill: str, errors: list[tuple[str, str]]) -> None:
        self.skill = skill
        self.errors = errors
        detail = "; ".join(f"{field}: {msg}" for field, msg in errors)
        super().__init__(f"invalid arguments for {skill}: {detail}")


class PermissionDenied(HubError):
    pass


class ApprovalDenied(HubError):
    pass


class SkillFailed(HubError):
    pass


class SkillTimeout(SkillFailed):
    pass


class JobCancelled(HubError):
    pass


class UnknownJob(HubError):
    pass


class BackendDown(HubError):
    pass


def os_reason(exc: BaseException) -> str:
    """The most specific reason of a low-level error chain, on one line: "Connection refused (errno 111)",
    not requests/urllib3's nested reprs (those belong in a debug log, not in front of a person)."""
    import re

    text = str(exc).strip() or type(exc).__name__
    found = re.search(r"\[Errno (\d+)\] ([^'\"()]+)", text) or re.search(r"Error\((\d+), '([^']+)'\)", text)
    if found:
        return f"{found.group(2).strip()} (errno {found.group(1)})"
    return text[:200]
