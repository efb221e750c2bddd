"""Argument errors of the bridge's own tools in the words skill tools use, not pydantic's dump.

FastMCP validates a function tool's arguments with pydantic and answers with its raw text (error
type, input value, a documentation link). A client, and the model reading the answer, needs the
field and what is wrong with it: `invalid arguments for job_result: wait_s: Input should be less
than or equal to 30`, and an unknown argument named with what the tool takes.
"""

from __future__ import annotations

import difflib
import logging
from typing import Any

from fastmcp.exceptions import ToolError, ValidationError
from fastmcp.server.middleware import Middleware
from pydantic import ValidationError as PydanticValidationError

_UNKNOWN = {"unexpected_keyword_argument", "extra_forbidden"}
_MISSING = {"missing_argument", "missing"}


def argument_errors(tool: str, exc: PydanticValidationError, known: list[str]) -> str:
    """One line naming every bad argument, like `InvalidParams` does for skills."""
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        if err["type"] in _UNKNOWN:
            close = difflib.get_close_matches(field, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            msg = f"unknown argument; {hint}{tool} takes: {', '.join(known) or 'no arguments'}"
        elif err["type"] in _MISSING:
            msg = "required"
        else:
            msg = err["msg"]
        parts.append(f"{field}: {msg}")
    return f"invalid arguments for {tool}: {'; '.join(parts)}"


class ClearArgumentErrors(Middleware):
    """Turns FastMCP's argument validation failures into short, specific tool errors.

    It overrides `__call__` (FastMCP's documented whole-message hook, run once per message) rather
    than `on_call_tool`: the hook dispatch built three wrappers and ran four more coroutines on
    every message, tool calls included, to reach the one hook it needs."""

    async def __call__(self, context, call_next):
        if context.method != "tools/call":
            return await call_next(context)
        try:
            return await call_next(context)
        except ValidationError as exc:
            cause = exc.__cause__
            if not isinstance(cause, PydanticValidationError):
                raise
            name = context.message.name
            raise ToolError(argument_errors(name, cause, await _argument_names(context, name)),
                            log_level=logging.INFO) from None


async def _argument_names(context: Any, name: str) -> list[str]:
    server = getattr(context.fastmcp_context, "fastmcp", None)
    try:
        tool = await server.get_tool(name) if server is not None else None
    except Exception:
        tool = None
    return sorted((tool.parameters or {}).get("properties", {})) if tool is not None else []
