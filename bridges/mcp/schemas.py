"""JSON safety of tool schemas: every number a client parses must survive a JSON float.

JavaScript clients (and Mistral Vibe's validator) read JSON numbers as IEEE doubles. An integer
beyond ±(2^53−1) is silently rounded, or the whole tool list is rejected ("exceeds safe integer
domain"), so one careless bound (a seed up to 2^63−1) breaks every tool of the server. The server
drops such a tool with an error naming the schema path, and the tests walk every tool with this.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1


def json_safety_problems(schema: Any, path: str = "#") -> list[str]:
    """Every number in `schema` (bounds, defaults, enums, examples) a double cannot hold exactly."""
    return list(_walk(schema, path))


def _walk(node: Any, path: str) -> Iterator[str]:
    if isinstance(node, bool) or node is None or isinstance(node, str):
        return
    if isinstance(node, int):
        if abs(node) > MAX_SAFE_INTEGER:
            yield f"{path}: {node} is outside ±(2^53−1), which JSON clients cannot hold exactly"
        return
    if isinstance(node, float):
        if not math.isfinite(node):
            yield f"{path}: {node} is not a JSON number"
        elif node.is_integer() and abs(node) > MAX_SAFE_INTEGER:
            yield f"{path}: {node:g} is outside ±(2^53−1), which JSON clients cannot hold exactly"
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                yield f"{path}: key {key!r} is not a string"
            yield from _walk(value, f"{path}/{key}")
        return
    if isinstance(node, list | tuple):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}/{i}")
        return
    yield f"{path}: {type(node).__name__} is not a JSON value"
