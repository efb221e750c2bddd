"""web_search against the SearXNG stand-in (SearXNG's real JSON shape), and as a tool of both models."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.config import load_config
from hub.context import Context
from hub.core import Hub
from hub.errors import HubError
from hub.registry import SkillRegistry
from hub.sim import searxng
from hub.sim.serve import free_port, serve_app
from skills.web.searxng import SearchError, parse_response, web_url
from skills.web.web_search import web_search

# The keys of SearXNG's JSON answer (searx.webutils.get_json_response) and of one result, as a real
# instance sends them.
RESPONSE_KEYS = {"query", "number_of_results", "results", "answers", "corrections", "infoboxes", "suggestions",
                 "unresponsive_engines"}
RESULT_KEYS = {"url", "title", "content", "thumbnail", "engine", "template", "parsed_url", "img_src", "priority",
               "engines", "positions", "score", "category", "publishedDate"}


@pytest.fixture
async def searx():
    async with serve_app(searxng.create_app()) as url:
        yield url


async def stats(url: str) -> dict:
    async with httpx.AsyncClient() as http:
        return (await http.get(url + "/_sim/stats")).json()


async def test_the_stand_in_speaks_searxngs_json_and_refuses_like_searxng(searx):
    async with httpx.AsyncClient(base_url=searx) as http:
        answer = (await http.get("/search", params={"q": "EAGLE speculative decoding", "format": "json"})).json()
        assert set(answer) == RESPONSE_KEYS and answer["query"] == "EAGLE speculative decoding"
        assert answer["results"] and all(set(r) == RESULT_KEYS for r in answer["results"])
        first = answer["results"][0]
        assert first["template"] == "default.html" and first["positions"] == [1] and first["engine"] in first["engines"]
        assert first["parsed_url"][:2] == ["https", "docs.sglang.ai"]
        posted = (await http.post("/search", data={"q": "EAGLE speculative decoding", "format": "json"})).json()
        assert posted["results"] == answer["results"]
        news = (await http.get("/search", params={"q": "GB10", "format": "json", "categories": "news"})).json()
        assert [r["category"] for r in news["results"]] == ["news"]
        assert (await http.get("/search", params={"q": "", "format": "json"})).json() == {"error": "No query"}
        bad = await http.get("/search", params={"q": "x", "format": "json", "safesearch": "7"})
        assert bad.status_code == 400 and "safesearch" in bad.json()["error"]
        await http.post("/_sim/config", json={"formats": ["html"]})
        assert (await http.get("/search", params={"q": "x", "format": "json"})).status_code == 403
        await http.post("/_sim/config", json={"formats": ["html", "json"], "limiter": True})
        assert (await http.get("/search", params={"q": "x", "format": "json"})).status_code == 429


def hub_config(tmp_path, searx_url: str, **web):
    return load_config(None, environ={}, overrides={
        "storage": {"data_dir": str(tmp_path / "data")},
        "skills": {"web": {"searxng_url": searx_url, **web}},
    })


def web_registry() -> SkillRegistry:
    registry = SkillRegistry()
    registry.register(web_search)
    return registry


async def test_web_search_returns_title_url_snippet_and_engine_with_the_configured_options(tmp_path, searx):
    config = hub_config(tmp_path, searx, categories=["general", "news"], language="de", safesearch=1, max_results=2)
    hub = await Hub.start(config, skills=web_registry(), components=(), resume_jobs=False)
    try:
        result = await hub.run_skill("web_search", {"query": "GB10 unified memory"}, Context.new("cli"))
        override = await hub.run_skill("web_search", {"query": "sglang", "limit": 1, "language": "en",
                                                      "categories": ["general"], "safesearch": 2},
                                       Context.new("cli"))
    finally:
        await hub.stop()
    assert len(result.results) == 2 and result.query == "GB10 unified memory"
    top = result.results[0]
    assert top.url.startswith("https://") and top.title and top.snippet and top.engine
    assert len(override.results) == 1
    queries = (await stats(searx))["queries"]
    assert queries[0] == {"q": "GB10 unified memory", "categories": ["general", "news"], "language": "de",
                          "safesearch": 1, "pageno": 1}
    assert queries[1]["language"] == "en" and queries[1]["categories"] == ["general"] and queries[1]["safesearch"] == 2


async def test_each_way_searxng_can_fail_gets_its_own_clear_error(tmp_path, searx):
    dead = f"http://127.0.0.1:{free_port()}"
    cases = [(dead, {}, "is unreachable"),
             (searx, {"formats": ["html"]}, r"refused format=json \(403\): add json to search.formats"),
             (searx, {"formats": ["html", "json"], "limiter": True}, r"limiter .* \(429\)")]
    for url, sim_config, message in cases:
        if sim_config:
            async with httpx.AsyncClient() as http:
                await http.post(searx + "/_sim/config", json=sim_config)
        hub = await Hub.start(hub_config(tmp_path, url), skills=web_registry(), components=(), resume_jobs=False)
        try:
            with pytest.raises(HubError, match=message):
                await hub.run_skill("web_search", {"query": "x"}, Context.new("cli"))
        finally:
            await hub.stop()


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30)
    | st.sampled_from(["https://a.example/x", "http://b.example", "javascript:alert(1)", "ftp://c", "https://",
                       "data:text/html,x", "//host/path", "https://a.example/x"]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(["url", "title", "content", "engine", "engines", "publishedDate", "results",
                         "suggestions", "unresponsive_engines"]), inner, max_size=6),
    max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(data=JSONISH, limit=st.integers(1, 5))
def test_any_answer_parses_to_unique_web_urls_within_the_limit_or_a_clear_error(data, limit):
    try:
        outcome = parse_response(data, "q", limit)
    except SearchError as exc:
        assert "results list" in str(exc)
        return
    urls = [h.url for h in outcome.results]
    assert len(urls) <= limit and len(urls) == len(set(urls))
    assert all(web_url(u) == u and u.split(":")[0] in ("http", "https") for u in urls)
    assert all(h.title and "\n" not in h.title + h.snippet for h in outcome.results)
    json.dumps(outcome.model_dump())


# -- a tool for both models -----------------------------------------------------------------------------
@pytest.fixture
async def bed(tmp_path, searx, monkeypatch):
    import tests.chat_helpers as helpers

    def registry() -> SkillRegistry:
        reg = _base()
        reg.register(web_search)
        return reg

    monkeypatch.setattr(helpers, "test_registry", registry)
    slow_box = {"local": {"first_token_timeout_s": 60, "stall_timeout_s": 60}}  # a busy CI box, not a fault test
    async with helpers.chat_bed(tmp_path, skills={"web": {"searxng_url": searx}}, llm=slow_box) as bed:
        bed.searx = searx
        yield bed


def _base() -> SkillRegistry:
    from tests.helpers_skills import test_registry

    return test_registry()


CALL = '[[call web_search {"query": "EAGLE speculative decoding", "limit": 2}]]'


async def test_the_local_model_can_search_the_web_and_a_local_only_room_stays_local(bed):
    outcome, sink = await bed.turn(f"look this up {CALL}", policy="local-only")
    assert outcome.route == "local" and outcome.error is None
    assert "https://docs.sglang.ai/advanced_features/speculative_decoding.html" in sink.of("finish")[0]
    assert await bed.cloud_requests() == 0
    assert (await stats(bed.searx))["queries"][0]["q"] == "EAGLE speculative decoding"


async def test_the_cloud_model_can_search_the_web_and_the_query_goes_only_to_searxng(bed):
    outcome, sink = await bed.turn(f"!claude look this up {CALL}")
    assert outcome.route == "cloud" and outcome.error is None
    assert "arxiv.org/abs/2503.01840" in sink.of("finish")[0]
    assert await bed.local_requests() == 0
    assert [q["q"] for q in (await stats(bed.searx))["queries"]] == ["EAGLE speculative decoding"]
    [job] = [j for j in await bed.hub.jobs.list() if j.skill == "web_search"]
    assert job.status == "succeeded" and job.context.origin == "matrix"
