"""The official MCP conformance suite against the hub's HTTP server (opt-in: needs Node 22 and npm).

Set SOVHUB_CONFORMANCE_DIR to a directory where `npm install node@22 @modelcontextprotocol/conformance@0.1.16`
ran. The suite's fixture tools that a skill can express (text, progress, error) are provided as skills,
so those scenarios exercise the real skill -> tool path; image/audio/sampling/elicitation fixtures,
prompts, resources and completions are not part of the hub and are expected to fail.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from pydantic import BaseModel

from hub.jobs import SkillRun
from hub.registry import SkillRegistry, skill
from tests.test_mcp_http import mcp_registry, running

CONFORMANCE_DIR = os.environ.get("SOVHUB_CONFORMANCE_DIR")
# Scenarios the hub's server must pass; the rest need fixtures a product server does not have.
MUST_PASS = ("server-initialize", "ping", "logging-set-level", "tools-list", "tools-call-simple-text",
             "tools-call-error", "tools-call-with-progress", "server-sse-multiple-streams",
             "dns-rebinding-protection")


class NoArgs(BaseModel):
    pass


class Text(BaseModel):
    text: str


@skill(name="test_simple_text", description="Conformance fixture: plain text", params=NoArgs, result=Text)
async def test_simple_text(run: SkillRun, params: NoArgs) -> Text:
    return Text(text="This is a simple text response for testing.")


@skill(name="test_tool_with_progress", description="Conformance fixture: progress 0, 50, 100", params=NoArgs,
       result=Text)
async def test_tool_with_progress(run: SkillRun, params: NoArgs) -> Text:
    for done in (0, 50, 100):
        await run.progress(done, 100, f"{done}%")
        await asyncio.sleep(0.05)
    return Text(text="done")


@skill(name="test_error_handling", description="Conformance fixture: always fails", params=NoArgs, result=Text)
async def test_error_handling(run: SkillRun, params: NoArgs) -> Text:
    raise RuntimeError("This tool intentionally returns an error for testing")


def conformance_registry() -> SkillRegistry:
    registry = mcp_registry()
    for item in (test_simple_text, test_tool_with_progress, test_error_handling):
        registry.register(item)
    return registry


@pytest.mark.slow
@pytest.mark.skipif(not CONFORMANCE_DIR, reason="set SOVHUB_CONFORMANCE_DIR to run the official MCP conformance suite")
async def test_official_conformance_suite_passes_the_scenarios_a_hub_serves(tmp_path, monkeypatch):
    import tests.test_mcp_http as http_tests

    monkeypatch.setattr(http_tests, "mcp_registry", conformance_registry)
    base = Path(CONFORMANCE_DIR)
    node = base / "node_modules" / ".bin" / "node"
    cli = base / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    async with running(tmp_path, tokens=[]) as (_, bridge):
        results = {}
        for scenario in MUST_PASS:
            proc = await asyncio.create_subprocess_exec(
                str(node), str(cli), "server", "--url", bridge.url, "--scenario", scenario, "--verbose",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            out, _ = await asyncio.wait_for(proc.communicate(), 120)
            text = out.decode()
            checks, _ = json.JSONDecoder().raw_decode(text, text.index("[\n"))
            results[scenario] = [c["status"] for c in checks if c["status"] not in ("INFO",)]
    failed = {s: r for s, r in results.items() if any(x == "FAILURE" for x in r)}
    assert not failed, failed
