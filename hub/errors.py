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
