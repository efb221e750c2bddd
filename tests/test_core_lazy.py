"""Lazy imports: the SDKs behind optional paths load at first use, and start-up does not load them."""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hub.lazy import lazy_import

ROOT = Path(__file__).resolve().parents[1]


def test_a_lazy_module_is_the_module_once_used_even_from_threads():
    lazy_colorsys = lazy_import("colorsys")
    seen: list = []
    threads = [threading.Thread(target=lambda: seen.append(lazy_colorsys.rgb_to_hsv)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    import colorsys

    assert seen == [colorsys.rgb_to_hsv] * 8


def test_a_missing_package_fails_at_import_time():
    with pytest.raises(ModuleNotFoundError, match="no_such_package_xyz"):
        lazy_import("no_such_package_xyz")


SDKS = ("anthropic", "openai", "docker", "nio", "aiohttp", "fastmcp", "uvicorn", "bridges.api.app",
        "bridges.mcp.bridge")
HUB_IN = ("import asyncio, tempfile\n"
          "from hub.config import load_config\n"
          "def config(d, **parts):\n"
          "    off = {'matrix': {'enabled': False}, 'api': {'enabled': False}, 'mcp': {'enabled': False},\n"
          "           'status': {'enabled': False}}\n"
          "    return load_config(None, overrides={**off, 'storage': {'data_dir': d}, **parts}, environ={})\n")


def imported_after(script: str) -> set[str]:
    """Which of SDKS a fresh interpreter holds after running `script` (HUB_IN's helpers in scope)."""
    code = HUB_IN + script + f"\nimport sys\nprint(sorted(m for m in {SDKS!r} if m in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(ast.literal_eval(out.stdout.strip().splitlines()[-1]))


def test_starting_the_mcp_server_and_the_hub_does_not_import_the_model_or_docker_sdks():
    loaded = imported_after("from hub.core import Hub\n"
                            "import bridges.mcp.server, bridges.mcp.cli\n"
                            "async def main():\n"
                            "    with tempfile.TemporaryDirectory() as d:\n"
                            "        await (await Hub.start(config(d))).stop()\n"
                            "asyncio.run(main())\n")
    assert not loaded & {"anthropic", "openai", "docker"}


def test_disabled_bridges_are_not_imported_and_enabled_ones_import_their_sdk_only_when_started():
    loaded = imported_after("from hub.serve import bridge_modules\n"
                            "with tempfile.TemporaryDirectory() as d:\n"
                            "    assert bridge_modules(config(d)) == []\n"
                            "    on = bridge_modules(config(d, mcp={'enabled': True}, status={'enabled': True}))\n"
                            "    assert [n for n, _ in on] == ['mcp', 'status'], on\n")
    assert not loaded & {"nio", "fastmcp", "uvicorn", "bridges.api.app"}


def test_sovhub_run_with_mcp_and_the_status_page_imports_no_model_docker_or_matrix_sdk():
    loaded = imported_after("from hub.serve import run_forever\n"
                            "async def main():\n"
                            "    with tempfile.TemporaryDirectory() as d:\n"
                            "        stop = asyncio.Event()\n"
                            "        stop.set()  # started in full, then stopped at once\n"
                            "        await run_forever(config(d, mcp={'enabled': True, 'port': 0},\n"
                            "                                 status={'enabled': True, 'port': 0}), stop)\n"
                            "asyncio.run(main())\n")
    assert "bridges.mcp.bridge" in loaded  # the MCP server ran, without the rest
    assert not loaded & {"anthropic", "openai", "docker", "nio", "aiohttp", "bridges.api.app"}
