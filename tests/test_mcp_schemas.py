"""Every MCP tool's schemas are valid JSON Schema 2020-12 and JSON-safe; skills refuse unknown arguments.

The tool list is read through a real MCP client session from a server built on the hub's real
registry (every skill module, plus the bridge's own tools), exactly as a client receives it.
"""

from __future__ import annotations

import json
import logging

import jsonschema
import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from bridges.mcp.access import Caller
from bridges.mcp.hub_tools import HUB_TOOL_NAMES
from bridges.mcp.schemas import MAX_SAFE_INTEGER, json_safety_problems
from bridges.mcp.server import build_server
from hub.config import load_config
from hub.core import Hub
from hub.errors import InvalidParams
from hub.jobs import SkillRun
from hub.registry import SkillRegistry, skill
from skills.content.hero_image import hero_image

validator_for = jsonschema.Draft202012Validator


async def listed_tools(tmp_path, registry: SkillRegistry | None = None) -> tuple[Hub, list]:
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}}, environ={})
    hub = await Hub.start(config, skills=registry, components=(), resume_jobs=False)
    try:
        server = build_server(hub, default_caller=Caller("test", "owner"), with_auth=False)
        async with Client(server) as client:
            return hub, await client.list_tools()
    finally:
        await hub.stop()


async def test_every_tool_schema_is_valid_2020_12_and_json_safe(tmp_path):
    hub, tools = await listed_tools(tmp_path)  # the real registry: every skill module
    assert {t.name for t in tools} == {s.name for s in hub.skills} | set(HUB_TOOL_NAMES)
    for tool in tools:
        for kind, schema in (("input", tool.input_schema), ("output", tool.output_schema)):
            if schema is None:
                continue
            validator_for.check_schema(schema)  # raises SchemaError naming the bad keyword
            assert schema.get("type") == "object", (tool.name, kind)
            assert json_safety_problems(schema) == [], (tool.name, kind)
            # What a JavaScript client parses is what we sent: a double round-trip changes nothing.
            wire = json.dumps(schema)
            assert json.loads(wire, parse_int=float, parse_float=float) == json.loads(wire), (tool.name, kind)
        if tool.name in {s.name for s in hub.skills}:
            assert tool.input_schema["additionalProperties"] is False, tool.name


def test_a_seed_fits_a_double_and_an_example_call_validates():
    schema = hero_image.input_schema()
    assert schema["properties"]["seed"]["anyOf"][0]["maximum"] == MAX_SAFE_INTEGER
    check = validator_for(schema)
    assert check.is_valid({"prompt": "a red fox", "seed": MAX_SAFE_INTEGER, "width": 512})
    assert not check.is_valid({"prompt": "a red fox", "widht": 512})


def test_unknown_argument_is_refused_by_name_with_a_suggestion():
    with pytest.raises(InvalidParams) as caught:
        hero_image.validate_params({"prompt": "a red fox", "widht": 512})
    message = str(caught.value)
    assert "widht: unknown argument; did you mean 'width'?" in message
    assert "hero_image takes: height, name, prompt, seed, steps, width" in message


def test_unknown_and_invalid_arguments_are_reported_together():
    with pytest.raises(InvalidParams) as caught:
        hero_image.validate_params({"prompt": "x", "colour": "red"})
    fields = [f for f, _ in caught.value.errors]
    assert fields == ["colour", "prompt"]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), st.integers() | st.text() | st.none(), max_size=4))
def test_any_argument_the_skill_does_not_take_is_named_in_the_error(extra):
    known = set(hero_image.argument_names())
    raw = {"prompt": "a red fox", **extra}
    unknown = sorted(k for k in raw if k not in known)
    try:
        hero_image.validate_params(raw)
    except InvalidParams as exc:
        named = [f for f, msg in exc.errors if "unknown argument" in msg]
        assert named == unknown
    else:
        assert not unknown


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=3),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                    max_leaves=12))
def test_json_safety_flags_exactly_the_numbers_a_double_cannot_hold(schema):
    def unsafe(node) -> int:
        if isinstance(node, dict):
            return sum(unsafe(v) for v in node.values())
        if isinstance(node, list):
            return sum(unsafe(v) for v in node)
        if isinstance(node, int):
            return int(abs(node) > MAX_SAFE_INTEGER)
        if isinstance(node, float):
            return int(node.is_integer() and abs(node) > MAX_SAFE_INTEGER)
        return 0

    assert len(json_safety_problems(schema)) == unsafe(schema)


class WideParams(BaseModel):
    seed: int = Field(0, ge=0, le=2**63 - 1)


class Out(BaseModel):
    ok: bool


@skill(name="wide_seed", description="A skill with an unsafe bound", params=WideParams, result=Out)
async def wide_seed(run: SkillRun, params: WideParams) -> Out:
    return Out(ok=True)


async def test_a_tool_with_an_unsafe_bound_is_left_out_not_served(tmp_path, caplog):
    registry = SkillRegistry()
    registry.register(wide_seed)
    registry.register(hero_image)
    with caplog.at_level(logging.ERROR, logger="bridges.mcp.server"):
        _, tools = await listed_tools(tmp_path, registry)
    assert "wide_seed" not in {t.name for t in tools} and "hero_image" in {t.name for t in tools}
    assert "MCP tool wide_seed left out: inputSchema/properties/seed/maximum: 9223372036854775807" in caplog.text


async def test_an_mcp_call_with_a_misspelt_argument_fails_naming_it(tmp_path):
    registry = SkillRegistry()
    registry.register(hero_image)
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}}, environ={})
    hub = await Hub.start(config, skills=registry, components=(), resume_jobs=False)
    try:
        server = build_server(hub, default_caller=Caller("test", "write"), with_auth=False)
        async with Client(server) as client:
            with pytest.raises(ToolError, match="widht: unknown argument; did you mean 'width'"):
                await client.call_tool("hero_image", {"prompt": "a red fox", "widht": 512})
    finally:
        await hub.stop()


async def test_server_says_it_is_sovhub_and_hints_tell_the_truth(tmp_path):
    import hub as hub_package

    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}}, environ={})
    hub = await Hub.start(config, components=(), resume_jobs=False)
    try:
        server = build_server(hub, default_caller=Caller("test", "owner"), with_auth=False)
        async with Client(server) as client:
            info = client.server_info
            assert (info.name, info.version) == ("sovhub", hub_package.version()) and info.version != "0+unknown"
            hints = {t.name: t.annotations for t in await client.list_tools()}
            # Deploys and pushes: open world and destructive. Local GPU work: closed world, additive.
            assert hints["publish_article"].open_world_hint and hints["publish_article"].destructive_hint
            assert not hints["hero_image"].open_world_hint and not hints["hero_image"].destructive_hint
            assert hints["ask"].open_world_hint and not hints["ask_local"].open_world_hint
            assert hints["search_blog"].read_only_hint and hints["search_blog"].idempotent_hint
    finally:
        await hub.stop()


async def test_the_bridges_own_tools_name_bad_arguments_without_pydantic_noise(tmp_path):
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}}, environ={})
    hub = await Hub.start(config, skills=SkillRegistry(), components=(), resume_jobs=False)
    try:
        server = build_server(hub, default_caller=Caller("test", "write"), with_auth=False)
        async with Client(server) as client:
            cases = {(): "invalid arguments for job_result: job_id: required",
                     (("job_id", "a"), ("wait_s", -1)): "wait_s: Input should be greater than or equal to 0",
                     (("job_id", "a"), ("wait", 1)): "wait: unknown argument; did you mean 'wait_s'? "
                                                     "job_result takes: job_id, wait_s"}
            for args, expected in cases.items():
                result = await client.call_tool("job_result", dict(args), raise_on_error=False)
                text = result.content[0].text
                assert result.is_error and expected in text and "pydantic" not in text and "input_value" not in text
    finally:
        await hub.stop()
