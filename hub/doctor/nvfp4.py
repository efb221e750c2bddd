"""Does an NVFP4 checkpoint's config.json say it is NVFP4? (stdlib only: it also runs in fetch-models).

SGLang and vLLM pick the quantization method from `quantization_config` in config.json. A
config.json copied from the unquantized base repository lacks it, and the server then loads the
4-bit weights as if they were bf16 (a shape error at best). ModelOpt exports keep the same facts
in `hf_quant_config.json` ({"quantization": {"quant_algo": "NVFP4", ...}}), which `complete()`
merges into config.json as `{"quant_method": "modelopt", ...}`.

    python3 nvfp4.py check DIR      exit 0 when config.json declares NVFP4, else 1 with the reason
    python3 nvfp4.py complete DIR   merge hf_quant_config.json into config.json when needed
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

MODELOPT = ("modelopt", "modelopt_fp4")


def _is_nvfp4_group(group: object) -> bool:
    """A compressed-tensors config group that stores 4-bit float weights."""
    if not isinstance(group, dict):
        return False
    weights = group.get("weights") or {}
    return isinstance(weights, dict) and weights.get("num_bits") == 4 and weights.get("type") == "float"


def describe(config: dict) -> tuple[bool, str]:
    """(True, what) when the config declares NVFP4 quantization, else (False, why not)."""
    quant = config.get("quantization_config")
    if not isinstance(quant, dict):
        return False, "config.json has no quantization_config (copied from the unquantized base repo?)"
    method = str(quant.get("quant_method", "")).lower()
    if method in MODELOPT:
        algo = str(quant.get("quant_algo") or (quant.get("quantization") or {}).get("quant_algo") or "")
        if "FP4" in algo.upper():
            return True, f"quant_method {method}, quant_algo {algo}"
        return False, f"quant_method {method} but quant_algo is {algo or 'missing'}, not NVFP4"
    if method == "compressed-tensors":
        fmt = str(quant.get("format", ""))
        groups = (quant.get("config_groups") or {}).values()
        if "nvfp4" in fmt.lower() or any(_is_nvfp4_group(g) for g in groups):
            return True, f"compressed-tensors, format {fmt or 'nvfp4 groups'}"
        return False, f"compressed-tensors with format {fmt or 'unknown'}, not NVFP4"
    return False, f"quantization_config.quant_method is {method or 'missing'}, not an NVFP4 method"


def check(model_dir: Path) -> tuple[bool, str]:
    path = Path(model_dir) / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return False, f"{path} is missing"
    except (OSError, ValueError) as exc:
        return False, f"{path} is unreadable: {exc}"
    if not isinstance(config, dict):
        return False, f"{path} is not a JSON object"
    return describe(config)


def complete(model_dir: Path) -> tuple[bool, str]:
    """Give config.json the NVFP4 quantization_config from hf_quant_config.json (atomic write)."""
    ok, why = check(model_dir)
    if ok:
        return True, why
    config_path = Path(model_dir) / "config.json"
    hf_quant = Path(model_dir) / "hf_quant_config.json"
    if not config_path.is_file():
        return False, why
    if not hf_quant.is_file():
        return False, f"{why}; and there is no hf_quant_config.json to take it from"
    quantization = json.loads(hf_quant.read_text()).get("quantization") or {}
    if "FP4" not in str(quantization.get("quant_algo", "")).upper():
        return False, f"{why}; hf_quant_config.json says quant_algo {quantization.get('quant_algo')!r}"
    config = json.loads(config_path.read_text())
    config["quantization_config"] = {"quant_method": "modelopt", **quantization}
    tmp = config_path.with_name(".config.json.tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    os.replace(tmp, config_path)
    return check(model_dir)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("check", "complete"):
        print(__doc__, file=sys.stderr)
        return 2
    ok, why = (check if argv[1] == "check" else complete)(Path(argv[2]))
    print(f"{argv[2]}: {'NVFP4' if ok else 'NOT NVFP4'}: {why}", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
