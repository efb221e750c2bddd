"""Graph validation of the ComfyUI stand-in, reproducing the real server's 400 bodies."""

from __future__ import annotations

from typing import Any

from hub.sim.comfyui_nodes import NodeDef


def _err(type_: str, message: str, details: str = "", extra: dict | None = None) -> dict[str, Any]:
    return {"type": type_, "message": message, "details": details, "extra_info": extra or {}}


def _check_value(name: str, spec: list, val: Any) -> list[dict]:
    kind = spec[0]
    opts = spec[1] if len(spec) > 1 else {}
    if isinstance(kind, list):
        if val not in kind:
            return [
                _err(
                    "value_not_in_list",
                    "Value not in list",
                    f"{name}: '{val}' not in {kind}",
                    {"input_name": name, "input_config": [kind, opts], "received_value": val},
                )
            ]
        return []
    if kind in ("INT", "FLOAT"):
        try:
            num = int(val) if kind == "INT" else float(val)
        except (TypeError, ValueError) as ex:
            return [
                _err(
                    "invalid_input_type",
                    f"Failed to convert an input value to a {kind} value",
                    f"{name}, {val}, {ex}",
                    {"input_name": name, "input_config": spec, "received_value": val},
                )
            ]
        if "min" in opts and num < opts["min"]:
            return [
                _err(
                    "value_smaller_than_min",
                    f"Value {num} smaller than min of {opts['min']}",
                    name,
                    {"input_name": name, "input_config": spec, "received_value": val},
                )
            ]
        if "max" in opts and num > opts["max"]:
            return [
                _err(
                    "value_bigger_than_max",
                    f"Value {num} bigger than max of {opts['max']}",
                    name,
                    {"input_name": name, "input_config": spec, "received_value": val},
                )
            ]
    return []


def _validate_node(prompt: dict, node_id: str, defs: dict[str, NodeDef], validated: dict) -> bool:
    if node_id in validated:
        return validated[node_id][0]
    node = prompt[node_id]
    d = defs[node["class_type"]]
    inputs = node.get("inputs", {})
    errors: list[dict] = []
    valid = True
    try:
        specs = {**d.required, **{k: v for k, v in d.optional.items() if k in inputs}}
        for name, spec in specs.items():
            if name not in inputs:
                errors.append(_err("required_input_missing", "Required input is missing", name, {"input_name": name}))
                continue
            val = inputs[name]
            if isinstance(val, list):
                if len(val) != 2:
                    errors.append(
                        _err(
                            "bad_linked_input",
                            "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                            name,
                            {"input_name": name, "input_config": spec, "received_value": val},
                        )
                    )
                    continue
                up_id = str(val[0])
                up_class = prompt[up_id]["class_type"]
                received = defs[up_class].output[val[1]]
                wanted = spec[0]
                if wanted != "*" and received != wanted:
                    errors.append(
                        _err(
                            "return_type_mismatch",
                            "Return type mismatch between linked nodes",
                            f"{name}, received_type({received}) mismatch input_type({wanted})",
                            {"input_name": name, "input_config": spec, "received_type": received, "linked_node": val},
                        )
                    )
                    continue
                if not _validate_node(prompt, up_id, defs, validated):
                    valid = False
                continue
            errors.extend(_check_value(name, spec, val))
    except Exception as ex:  # the real server reports any validation crash this way
        validated[node_id] = (
            False,
            [
                _err(
                    "exception_during_validation",
                    "Exception when validating node",
                    str(ex),
                    {
                        "exception_type": type(ex).__name__,
                        "traceback": [
                            '  File "<path>/execution.py", line 1010, in validate_prompt\n    <source line redacted>\n',
                            '  File "<path>/execution.py", line 788, in validate_inputs\n    <source line redacted>\n',
                        ],
                    },
                )
            ],
        )
        return False
    if errors:
        valid = False
    validated[node_id] = (valid, errors)
    return valid


def validate_prompt(prompt: Any, defs: dict[str, NodeDef]) -> tuple[dict | None, list[str], dict]:
    """Return (error or None, outputs to execute, node_errors) exactly as ComfyUI 0.3.64 shapes them."""
    outputs: list[str] = []
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return (
                _err(
                    "invalid_prompt",
                    "Cannot execute because a node is missing the class_type property.",
                    f"Node ID '#{node_id}'",
                ),
                [],
                {},
            )
        d = defs.get(node["class_type"])
        if d is None:
            return (
                _err(
                    "invalid_prompt",
                    f"Cannot execute because node {node['class_type']} does not exist.",
                    f"Node ID '#{node_id}'",
                ),
                [],
                {},
            )
        if d.output_node:
            outputs.append(str(node_id))
    if not outputs:
        return _err("prompt_no_outputs", "Prompt has no outputs"), [], {}
    validated: dict[str, tuple] = {}
    good: list[str] = []
    failures: list[tuple[str, list]] = []
    node_errors: dict[str, dict] = {}
    for o in outputs:
        if _validate_node(prompt, o, defs, validated):
            good.append(o)
            continue
        failures.append((o, validated[o][1]))
        for nid, (ok, reasons) in validated.items():
            if not ok and reasons:
                entry = node_errors.setdefault(
                    nid, {"errors": reasons, "dependent_outputs": [], "class_type": prompt[nid]["class_type"]}
                )
                if o not in entry["dependent_outputs"]:
                    entry["dependent_outputs"].append(o)
    if not good:
        details = "\n".join(f"{e['message']}: {e['details']}" for _, errs in failures for e in errs)
        return (_err("prompt_outputs_failed_validation", "Prompt outputs failed validation", details), [], node_errors)
    return None, good, node_errors
