"""Destructive MCP calls: the person at the client approves by elicitation, else the configured fallback."""

from __future__ import annotations

import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError

from bridges.matrix.approvals import Approvals
from bridges.mcp.approval import what_happens
from hub.config import load_config
from skills.content.publish import PublishParams, publish_article
from tests.test_mcp_http import OWNER, TOKENS, WRITER, running

ASKER = "asker-token-0123456789abcdef"


def with_tokens() -> list[dict]:
    return [*TOKENS, {"name": "asker", "token": ASKER, "role": "write", "approval": "matrix"}]


class Person:
    """An MCP client's user answering elicitation requests."""

    def __init__(self, answer: bool | None) -> None:
        self.answer = answer
        self.asked: list[str] = []

    async def __call__(self, message, response_type, params, context):
        self.asked.append(message)
        if self.answer is None:
            from fastmcp.client.elicitation import ElicitResult

            return ElicitResult(action="decline")
        return {"value": self.answer}


async def events(hub, job_id: str) -> list[str]:
    return [e["type"] for e in await hub.jobs.events(job_id)]


async def test_an_owner_whose_client_can_ask_is_asked_and_yes_runs_it(tmp_path):
    person = Person(True)
    async with running(tmp_path) as (hub, bridge):
        async with Client(bridge.url, auth=OWNER, elicitation_handler=person, mode="legacy") as client:
            result = await client.call_tool("wipe", {})
        assert result.structured_content == {"wiped": True}
        assert len(person.asked) == 1 and person.asked[0].startswith("wipe: A destructive test skill")
        job_id = result.meta["sovhub"]["job_id"]
        assert {"approval_requested", "approval"} <= set(await events(hub, job_id))


@pytest.mark.parametrize("answer", [False, None])
async def test_no_or_decline_from_the_person_denies_the_call(tmp_path, answer):
    person = Person(answer)
    async with running(tmp_path) as (hub, bridge):
        async with Client(bridge.url, auth=OWNER, elicitation_handler=person, mode="legacy") as client:
            with pytest.raises(ToolError, match="wipe was not approved"):
                await client.call_tool("wipe", {})
        assert [j.skill for j in await hub.jobs.list(5, status="denied")] == ["wipe"]


async def test_an_owner_token_without_elicitation_is_the_approval_as_before(tmp_path):
    async with running(tmp_path) as (_, bridge), Client(bridge.url, auth=OWNER) as client:
        assert (await client.call_tool("wipe", {})).structured_content == {"wiped": True}


async def test_a_write_token_set_to_matrix_approval_is_refused_clearly_when_matrix_is_not_running(tmp_path):
    async with running(tmp_path, tokens=with_tokens()) as (hub, bridge):
        async with Client(bridge.url, auth=ASKER) as client:
            with pytest.raises(ToolError, match="wipe needs the owner's approval in Matrix, but the Matrix bridge "
                                                "is not running in this hub"):
                await client.call_tool("wipe", {})
        async with Client(bridge.url, auth=WRITER) as client:
            with pytest.raises(ToolError, match="set approval: matrix on this token"):
                await client.call_tool("wipe", {})
        assert await hub.jobs.list(5, status="succeeded") == []


class _Room:
    """The Matrix side of `Approvals`: records what the bot sends (the network edge, not the logic)."""

    def __init__(self) -> None:
        import asyncio

        self.sent: list[tuple[str, dict]] = []
        self.arrived = asyncio.Event()

    async def send(self, room_id: str, content: dict, **_) -> str:
        self.sent.append((room_id, content))
        self.arrived.set()
        return f"$event{len(self.sent)}"


@pytest.mark.parametrize("reaction", ["✅", "❌"])
async def test_a_write_token_set_to_matrix_approval_waits_for_the_owners_reaction(tmp_path, reaction):
    import asyncio
    from types import SimpleNamespace

    owners = {"@ana:example.org"}
    room = _Room()
    approvals = Approvals(room, lambda sender, _room: sender in owners, timeout_s=30)
    settings = {"matrix": {"announce_room": "!ops:example.org"}}
    async with running(tmp_path, tokens=with_tokens(), config=settings) as (hub, bridge):
        hub.extras["matrix"] = SimpleNamespace(approvals=approvals)
        async with Client(bridge.url, auth=ASKER) as client:
            call = asyncio.create_task(client.call_tool("wipe", {}, raise_on_error=False))
            await asyncio.wait_for(room.arrived.wait(), 30)
            (where, question), = room.sent
            assert where == "!ops:example.org" and "wipe (asked over MCP by asker)" in question["body"]
            assert not approvals.on_reaction(where, "@mallory:example.org", "$event1", "✅")  # not an owner
            assert approvals.on_reaction(where, "@ana:example.org", "$event1", reaction)
            result = await asyncio.wait_for(call, 30)
        if reaction == "✅":
            assert result.structured_content == {"wiped": True}
        else:
            assert result.is_error and "wipe was not approved" in result.content[0].text


def test_the_question_for_a_publish_says_where_it_deploys_and_whether_it_pushes(tmp_path):
    from types import SimpleNamespace

    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}, "skills": {"content": {
        "blog_dir": str(tmp_path / "blog"), "deploy_command": ["rsync", "-a", "dist/", "web:/srv/www"]}}},
        environ={})
    hub = SimpleNamespace(config=config)
    text = what_happens(hub, publish_article, PublishParams(notes="GB10 notes", force=True))
    assert f"Publishes to the site at {tmp_path / 'blog'} (deploy: rsync -a dist/ web:/srv/www)" in text
    assert "commits and pushes" in text and "replaces an existing article" in text
    draft = what_happens(hub, publish_article, PublishParams(notes="GB10 notes", draft=True))
    assert "Draft only" in draft and "deploy:" not in draft
