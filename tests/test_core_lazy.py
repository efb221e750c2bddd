"""Lazy imports: the SDKs behind optional paths load at first use, and start-up does not load them."""

from __future__ import annotations

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


def test_starting_the_mcp_server_and_the_hub_does_not_import_the_model_or_docker_sdks():
    code = ("import sys, asyncio, tempfile\n"
            "from hub.config import load_config\n"
            "from hub.core import Hub\n"
            "import bridges.mcp.server, bridges.mcp.cli\n"
            "async def main():\n"
            "    with tempfile.TemporaryDirectory() as d:\n"
            "        cfg = load_config(None, overrides={'storage': {'data_dir': d}}, environ={})\n"
            "        hub = await Hub.start(cfg)\n"
            "        await hub.stop()\n"
            "asyncio.run(main())\n"
            "print(sorted(m for m in ('anthropic', 'openai', 'docker') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_disabled_bridges_are_not_imported_and_enabled_ones_import_their_sdk_only_when_started():
    code = ("import sys, tempfile\n"
            "from hub.config import load_config\n"
            "from hub.serve import bridge_modules\n"
            "with tempfile.TemporaryDirectory() as d:\n"
            "    off = {'storage': {'data_dir': d}, 'matrix': {'enabled': False}, 'api': {'enabled': False},\n"
            "           'mcp': {'enabled': False}, 'status': {'enabled': False}}\n"
            "    assert bridge_modules(load_config(None, overrides=off, environ={})) == []\n"
            "    on = {**off, 'mcp': {'enabled': True}, 'status': {'enabled': True}}\n"
            "    names = [n for n, _ in bridge_modules(load_config(None, overrides=on, environ={}))]\n"
            "print(names, sorted(m for m in ('nio', 'fastmcp', 'uvicorn', 'bridges.api.app') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "['mcp', 'status'] []"


def test_sovhub_run_with_mcp_and_the_status_page_imports_no_model_docker_or_matrix_sdk():
    code = ("import sys, asyncio, tempfile\n"
            "from hub.config import load_config\n"
            "from hub.serve import run_forever\n"
            "async def main():\n"
            "    with tempfile.TemporaryDirectory() as d:\n"
            "        cfg = load_config(None, environ={}, overrides={'storage': {'data_dir': d},\n"
            "            'mcp': {'enabled': True, 'port': 0}, 'status': {'enabled': True, 'port': 0},\n"
            "            'matrix': {'enabled': False}, 'api': {'enabled': False}})\n"
            "        stop = asyncio.Event()\n"
            "        stop.set()  # started in full, then stopped at once\n"
            "        await run_forever(cfg, stop)\n"
            "asyncio.run(main())\n"
            "print(sorted(m for m in ('anthropic', 'openai', 'docker', 'nio', 'aiohttp', 'bridges.api.app')\n"
            "             if m in sys.modules), 'bridges.mcp.bridge' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[] True"  # the MCP server ran, without those
