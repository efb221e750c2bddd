"""ComfyUI workflow templates: an API-format graph with named `{{placeholders}}`.

A user can drop in their own workflow: any node may use `{{prompt}}`, `{{negative}}`, `{{width}}`,
`{{height}}`, `{{seed}}`, `{{steps}}`, `{{checkpoint}}` and `{{filename_prefix}}`. A string that is
exactly one placeholder takes the value's type (an int stays an int); an embedded placeholder is
replaced as text.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from hub.errors import HubError

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
KNOWN = ("prompt", "negative", "width", "height", "seed", "steps", "checkpoint", "filename_prefix")
DEFAULT_WORKFLOW = Path(__file__).resolve().parents[2] / "config" / "workflows" / "flux_schnell.json"


class WorkflowError(HubError):
    pass


def load_template(path: Path | None) -> dict[str, Any]:
    """Read and check a template: a JSON object of nodes, each with class_type and inputs."""
    path = Path(path).expanduser() if path else DEFAULT_WORKFLOW
    try:
        graph = json.loads(path.read_text())
    except FileNotFoundError:
        raise WorkflowError(f"workflow template {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise WorkflowError(f"workflow template {path} is not valid JSON: {exc}") from None
    if not isinstance(graph, dict) or not graph:
        raise WorkflowError(f"workflow template {path} must be a JSON object of nodes (ComfyUI API format)")
    for node_id, node in graph.items():
        if not isinstance(node, dict) or "class_type" not in node or not isinstance(node.get("inputs"), dict):
            raise WorkflowError(
                f"workflow template {path}: node {node_id} needs class_type and inputs "
                "(export the workflow with 'Save (API Format)')"
            )
    names = placeholders(graph)
    if "prompt" not in names:
        raise WorkflowError(f"workflow template {path} has no {{{{prompt}}}} placeholder")
    unknown = names - set(KNOWN)
    if unknown:
        raise WorkflowError(
            f"workflow template {path}: unknown placeholder(s) {', '.join(sorted(unknown))} (known: {', '.join(KNOWN)})"
        )
    return graph


def placeholders(graph: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(graph, dict):
        for v in graph.values():
            found |= placeholders(v)
    elif isinstance(graph, list):
        for v in graph:
            found |= placeholders(v)
    elif isinstance(graph, str):
        found.update(PLACEHOLDER.findall(graph))
    return found


def fill(template: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A filled copy of the template; the template itself is left untouched."""

    def sub(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: sub(x) for k, x in v.items()}
        if isinstance(v, list):
            return [sub(x) for x in v]
        if isinstance(v, str):
            whole = PLACEHOLDER.fullmatch(v.strip())
            if whole:
                return values[whole.group(1)]
            return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), v)
        return v

    missing = placeholders(template) - set(values)
    if missing:
        raise WorkflowError(f"no value for placeholder(s) {', '.join(sorted(missing))}")
    return sub(copy.deepcopy(template))
