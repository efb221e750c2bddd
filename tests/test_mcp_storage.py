"""MCP on a full disk: the real cause reaches the caller, an id handed out is never "no job", nothing runs
half-recorded."""

from __future__ import annotations

import re

import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError

from tests.storage_helpers import disk_full
from tests.test_mcp_http import WRITER, running


async def test_a_call_on_a_full_disk_says_storage_full_and_its_job_id_is_never_no_job(tmp_path):
    async with running(tmp_path, call_wait_s=0.2) as (hub, bridge), Client(bridge.url, auth=WRITER) as client:
        async with disk_full(hub.store):
            with pytest.raises(ToolError) as info:
                await client.call_tool("slow_render", {"steps": 6, "step_s": 0.1})
            message = str(info.value)
            assert "storage full (database or disk is full)" in message and "rollback" not in message
            job_id = re.search(r"\(job ([0-9a-f]+)\)", message).group(1)
            with pytest.raises(ToolError) as info:
                await client.call_tool("job_status", {"job_id": job_id})
            assert "storage full (database or disk is full)" in str(info.value)
            assert "no job" not in str(info.value)
            assert not hub.jobs.active  # it never started
        status = (await client.call_tool("job_status", {"job_id": job_id})).structured_content
        assert status["status"] == "failed" and "storage full" in status["error"]  # the skill never acted
