"""publish_article with research: local model -> queries -> the SearXNG stand-in -> cited sources.

The article's links come from the stand-in's results; nothing reaches the Anthropic stand-in.
"""

from __future__ import annotations

import re

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import HubError
from hub.sim import anthropic, comfyui, searxng, sglang
from hub.sim.serve import free_port
from skills.content.article import Draft
from skills.content.research import Research, Source, cite, parse_queries, private
from tests.helpers_content import content_hub, stand_in
from tests.test_skill_publish import NOTES, make_site, publish, script, site_config, snapshot

QUERIES = """Here are the queries:
1. SGLang EAGLE speculative decoding
2. NVIDIA DGX Spark GB10 memory
3. sglang on 10.0.0.5 mem-fraction
"""

ARTICLE = """---
title: "Speculative decoding on a desk-side GB10"
description: "EAGLE3 triples single-stream speed for Mistral Small 4."
tags: [gpu, llm]
---

EAGLE3 took single-stream decoding from 12-15 tok/s to 35-41 tok/s [3], as SGLang documents [1].
A made-up claim [9] and a made-up [link](https://invented.example/page).

```python
print(speeds[0])  # [0] stays code
```

## Memory

The weights take about 66 GiB on the GB10's unified memory [3].

## References

- [Invented](https://invented.example/refs)
"""


@pytest.fixture
async def backends(tmp_path):
    async with (
        stand_in(sglang) as llm,
        stand_in(comfyui, base_dir=tmp_path / "comfy", step_delay=0, load_delay=0) as image,
        stand_in(anthropic) as cloud,
        stand_in(searxng) as search,
    ):
        yield {"sglang": llm, "comfyui": image, "cloud": cloud, "searxng": search}


async def stats(url: str) -> dict:
    async with httpx.AsyncClient() as http:
        return (await http.get(url + "/_sim/stats")).json()


async def test_research_cites_sources_from_searxng_and_never_reaches_the_cloud(tmp_path, backends):
    await script(backends["sglang"], QUERIES, ARTICLE)
    site, www = make_site(tmp_path), tmp_path / "www"
    config = site_config(tmp_path, site, www, sglang=backends["sglang"], comfyui=backends["comfyui"])
    config["llm"]["cloud"] = {"base_url": backends["cloud"], "api_key": "sk-test-unused"}
    config["skills"]["web"] = {"searxng_url": backends["searxng"], "research_results": 3}
    async with content_hub(config, components=("hub.chat.component",)) as hub:  # a cloud model on offer
        result = await publish(hub, notes=NOTES, research=True, image=False)
    searx = await stats(backends["searxng"])
    assert [q["q"] for q in searx["queries"]] == ["SGLang EAGLE speculative decoding",
                                                  "NVIDIA DGX Spark GB10 memory"]  # the one with an IP never left
    text = (site / "src" / "content" / "blog" / f"{result.slug}.md").read_text()
    links = re.findall(r"\]\((https?://[^)]+)\)", text)
    assert links and set(links) <= set(searx["served_urls"])
    assert result.further_reading == links and len(links) == 2
    assert result.further_reading[0] == searx["served_urls"][2]  # the model's [3]: renumbered to [1]
    assert "35-41 tok/s [1], as SGLang documents [2]" in text and "[9]" not in text
    assert "made-up link." in text and "invented.example" not in text and "## References" not in text
    assert "print(speeds[0])  # [0] stays code" in text
    assert text.rstrip().endswith(f"2. [{_title(searx, links[1])}]({links[1]})")
    assert "## Further reading" in text
    async with httpx.AsyncClient() as http:
        assert (await http.get(backends["sglang"] + "/_sim/stats")).json()["requests"] == 2
        assert (await http.get(backends["cloud"] + "/_sim/stats")).json()["requests"] == 0


def _title(searx: dict, url: str) -> str:
    return next(d["title"] for d in searxng.DEFAULT_DOCUMENTS if d["url"] == url)


async def test_research_that_finds_nothing_fails_before_the_site_changes_and_can_be_turned_off(tmp_path, backends):
    await script(backends["sglang"], QUERIES)
    site, www = make_site(tmp_path), tmp_path / "www"
    before = snapshot(site)
    config = site_config(tmp_path, site, www, sglang=backends["sglang"], comfyui=backends["comfyui"])
    config["skills"]["web"] = {"searxng_url": f"http://127.0.0.1:{free_port()}", "research": True}
    async with content_hub(config) as hub:
        with pytest.raises(HubError, match=r"research found nothing: .* is unreachable.*research=false"):
            await publish(hub, notes=NOTES, image=False)  # research on by config
        assert snapshot(site) == before
        await script(backends["sglang"], ARTICLE)
        result = await publish(hub, notes=NOTES, image=False, research=False)
    assert result.further_reading == [] and "Further reading" not in open(result.article_path).read()


# -- pure parts ----------------------------------------------------------------------------------------
def test_queries_with_private_details_never_leave():
    for query in ("sglang at 192.168.1.20", "mail bob@corp.example", "see https://intranet/x", "/srv/models path",
                  "key sk-ant-api03-abcdefgh", "gpu01.lan outage", "ghp_abcdefghijklmnop1234"):
        assert private(query), query
    assert not private("SGLang EAGLE-3 speculative decoding GB10")
    assert parse_queries("- a b c\n- A B C\n- d e f\n- g h i", 2) == ["a b c", "d e f"]


SOURCES = [Source(n, f"Title {n} [x]", f"https://s{n}.example/p_(a)", "snippet") for n in range(1, 6)]
FRAGMENTS = st.sampled_from([
    "[1]", "[2]", "[5]", "[7]", "[0]", " plain words ", "\n\n", "[a](https://invented.example/x)",
    "[b](https://s1.example/p_(a))", "<https://invented.example/auto>", "[rel](/blog/other/)",
    "`x[3]`", "\n```\nq[4]\n```\n", "\n## References\n- [r](https://invented.example/r)\n",
    "![img](https://images.example/a.png)", "[js](javascript:alert(1))", "[m](mailto:x@invented.example)",
    "https://notes.example/n", "[c](https://notes.example/n)",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(FRAGMENTS, max_size=25))
def test_citations_become_a_consecutive_further_reading_of_known_urls_only(fragments):
    body = "".join(fragments) or "text"
    draft, urls = cite(Draft("T", "d", [], body), Research(["q"], SOURCES), "notes: https://notes.example/n")
    known = {s.url for s in SOURCES} | {"https://notes.example/n"}
    prose = re.sub(r"```.*?```|`[^`]*`", "", draft.body, flags=re.S)
    assert "invented.example" not in prose and "javascript:" not in prose
    assert ("[rel](/blog/other/)" in draft.body) == ("[rel](/blog/other/)" in body)
    assert len(urls) == len(set(urls)) and set(urls) <= known
    head, _, reading = draft.body.partition("\n## Further reading\n\n")
    cited = {int(n) for n in re.findall(r"\[(\d+)\](?!\()", re.sub(r"```.*?```|`[^`]*`", "", head, flags=re.S))}
    assert cited == set(range(1, len(urls) + 1))
    items = reading.splitlines() if reading else []
    assert [int(i.split(".")[0]) for i in items] == list(range(1, len(urls) + 1))
    assert "q[4]" in draft.body if "q[4]" in body else True
