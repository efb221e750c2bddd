"""MCP on a full disk: the real cause reaches the caller, an id handed out is never "no job", nothing runs
half-recorded."""

from __future__ import annotations

import re

import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError

from hub.sim import sglang as sglang_sim
from hub.sim.serve import AppServer
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


async def test_ask_local_on_a_full_disk_answers_storage_full_not_an_opaque_tool_error(tmp_path):
    local = AppServer(sglang_sim.create_app())
    await local.start()
    llm = {"local": {"base_url": local.url + "/v1", "max_retries": 0}, "cloud": {"enabled": False}}
    try:
        async with running(tmp_path, components=("hub.chat.component",), config={"llm": llm}) as (hub, bridge), \
                Client(bridge.url, auth=WRITER) as client:
            async with disk_full(hub.store):
                answered = await client.call_tool("ask_local", {"prompt": "remember " * 3000})
                assert "remember" in answered.structured_content["text"]  # answered; its history is kept to save
                await hub.chat.settled()
                with pytest.raises(ToolError) as info:
                    await client.call_tool("ask_local", {"prompt": "and now?"})
            assert str(info.value).startswith("Storage full: the hub cannot save this conversation (database or "
                                              "disk is full), so nothing was sent to a model.")
            answer = (await client.call_tool("ask_local", {"prompt": "room again"})).structured_content
            assert "room again" in answer["text"]
    finally:
        await local.stop()
