"""The router: a pure function from what we know about a turn to a route and a one-line reason.

Precedence: local-only (from any source, see hub/privacy.py) > explicit (/local, /claude, !local,
!claude, MCP route) > room pin > task-class rules > default local. An explicit cloud choice where
local-only applies is refused with one line saying why and who can change the policy. Then
availability: local down or the GPU held by another resident -> Claude when the room allows (else
wait in the GPU queue with an ETA notice); cloud down, disabled or over budget -> local. A
local-only request never reaches the cloud, whatever fails. See DESIGN.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hub.config.routing import TaskRule

PREFIXES = {"!local": "local", "!claude": "cloud", "!cloud": "cloud"}
NAMES = {"local": "local model", "cloud": "Claude"}


@dataclass(frozen=True)
class RouterInput:
    text: str
    room_policy: str = "auto"
    override: str | None = None
    local_health: str = "unknown"  # up | down | unknown
    gpu_blocker: str | None = None  # why the LLM cannot serve right now ("the GPU is busy with comfyui")
    gpu_eta_s: float | None = None
    cloud_state: str = "up"  # up | down | disabled
    cloud_note: str = ""  # why the cloud is not usable (shown in reasons)
    budget_ok: bool = True
    budget_note: str = ""
    rules: Sequence[TaskRule] = ()
    privacy_refusal: str = ""  # the one line an explicit cloud choice gets where local-only applies
    policy_source: str | None = "room"  # where room_policy came from (hub/privacy.py Verdict.source)


@dataclass(frozen=True)
class Route:
    target: str  # local | cloud | none
    reason: str
    fallback: str | None = None  # where a failed call goes next
    wait: bool = False  # local turn queued behind another resident
    eta_s: float | None = None
    notice: str | None = None
    avoided: str | None = None  # why the preferred Claude is not used (budget, down): told on failure
    refused: str | None = None  # an explicit cloud choice refused by the local-only policy: the answer


def split_prefix(text: str) -> tuple[str, str | None]:
    """`!local ...` / `!claude ...` -> (rest, override)."""
    stripped = text.lstrip()
    head, _, rest = stripped.partition(" ")
    override = PREFIXES.get(head.lower())
    return (rest.strip(), override) if override else (text, None)


def match_rule(text: str, rules: Sequence[TaskRule]) -> tuple[TaskRule, str] | None:
    lowered = text.lower()
    for rule in rules:
        for keyword in rule.keywords:
            if keyword.lower() in lowered:
                return rule, keyword
    return None


# Why a policy applies, named by where it was set, so `/why` never calls the hub's default a room pin.
POLICY_REASONS = {
    "room": ("room is local-only", "room pinned to {}"),
    "config-room": ("room is local-only in the config's routing.rooms",
                    "room pinned to {} in the config's routing.rooms"),
    "caller": ("caller is local-only", "caller's policy is {}"),
    "context": ("request is local-only", "request's policy is {}"),
    "default": ("hub default is local-only", "hub default policy is {}"),
}


def policy_reason(policy: str, source: str | None) -> str:
    """'room is local-only', 'hub default policy is local', ... (an unknown source reads as the room)."""
    local_only, pinned = POLICY_REASONS.get(source or "room", POLICY_REASONS["room"])
    return local_only if policy == "local-only" else pinned.format(policy)


def preference(inp: RouterInput) -> tuple[str, str, bool]:
    """(target, why, explicit) before availability is considered. Local-only beats everything."""
    if inp.room_policy == "local-only":
        return ("local", "explicit /local" if inp.override == "local"
                else policy_reason("local-only", inp.policy_source), False)
    if inp.override in ("local", "cloud"):
        return inp.override, "explicit " + ("/claude" if inp.override == "cloud" else "/local"), True
    if inp.room_policy in ("local", "cloud"):
        return inp.room_policy, policy_reason(inp.room_policy, inp.policy_source), False
    if found := match_rule(inp.text, inp.rules):
        rule, keyword = found
        return rule.route, f"task class '{rule.name}' (matched '{keyword}')", False
    return "local", "default route", False


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    return f"~{round(seconds / 60)} min"


def decide(inp: RouterInput) -> Route:
    if inp.room_policy == "local-only" and inp.override == "cloud":
        line = inp.privacy_refusal or "This room is local-only, so nothing was sent to Claude."
        return Route("none", "explicit /claude refused: local-only", refused=line)
    target, why, explicit = preference(inp)
    cloud_allowed = inp.room_policy != "local-only"
    cloud_ok = inp.cloud_state == "up" and inp.budget_ok
    cloud_problem = inp.budget_note if inp.cloud_state == "up" and not inp.budget_ok else (
        inp.cloud_note or f"Claude is {inp.cloud_state}")
    local_down = inp.local_health == "down"
    local_ready = not local_down and inp.gpu_blocker is None

    if target == "cloud":
        if cloud_ok:
            return Route("cloud", why, fallback=None if local_down else "local")
        if local_down:
            return Route("none", f"{why}, but {cloud_problem}, and the local model is down")
        reason = f"{why}, but {cloud_problem} → local"
        if inp.gpu_blocker:
            return Route("local", f"{reason} (queued: {inp.gpu_blocker})", wait=True, eta_s=inp.gpu_eta_s,
                         notice=f"Not using Claude: {cloud_problem}. {_queued(inp)}", avoided=cloud_problem)
        return Route("local", reason, notice=f"Not using Claude: {cloud_problem}; answering locally.",
                     avoided=cloud_problem)

    # target local
    local_only = inp.room_policy == "local-only"
    may_fail_over = cloud_allowed and not local_only and not explicit and cloud_ok
    if local_ready:
        return Route("local", why, fallback="cloud" if may_fail_over else None)
    blocker = inp.gpu_blocker or "the local model is down"
    if may_fail_over:
        return Route("cloud", f"{why}, but {blocker} → Claude")
    if inp.gpu_blocker and not local_down:
        return Route("local", f"{why}; queued: {inp.gpu_blocker}", wait=True, eta_s=inp.gpu_eta_s,
                     notice=_queued(inp))
    # the local model looks down and the cloud is not an option: try local anyway (health may be
    # stale); a failure is answered with a clear notice, never with a cloud call
    note = "room is local-only" if local_only else ("explicit /local" if explicit else cloud_problem)
    return Route("local", f"{why}; the local model looked down, retrying it ({note}, no cloud)")


def _queued(inp: RouterInput) -> str:
    return f"{inp.gpu_blocker[0].upper()}{inp.gpu_blocker[1:]}; your turn is queued (ETA {eta_text(inp.gpu_eta_s)})."
