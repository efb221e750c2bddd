"""A client for SearXNG's JSON API (`/search?format=json`) and the pure parsing of its answers.

Only SearXNG is ever asked: the URL comes from `skills.web.searxng_url`, and nothing here knows
another search service. Results are cleaned for their readers (a model, an article): only http(s)
URLs, each once, titles and snippets on one line and bounded.
"""

from __future__ import annotations

import re
import ssl
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, Field

from hub.errors import HubError
from skills.web.config import WebSkillsConfig

MAX_TITLE = 300
MAX_SNIPPET = 600


class Hit(BaseModel):
    title: str
    url: str
    snippet: str = ""
    engine: str = ""
    engines: list[str] = Field(default_factory=list)
    published: str | None = None


class SearchOutcome(BaseModel):
    query: str
    results: list[Hit]
    suggestions: list[str] = Field(default_factory=list)
    unresponsive_engines: list[str] = Field(default_factory=list, description="engine: why it did not answer")


class SearchError(HubError):
    pass


def _line(value: Any, limit: int) -> str:
    text = re.sub(r"\s+", " ", value if isinstance(value, str) else "").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    """One verifying TLS context for every search: building it costs more than a local search."""
    return ssl.create_default_context()


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def web_url(value: Any) -> str | None:
    """The URL when it is an absolute http(s) URL with a host (never javascript:, data:, file:...)."""
    if not isinstance(value, str) or len(value) > 2048 or any(c.isspace() for c in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return value


def parse_response(data: Any, query: str, limit: int) -> SearchOutcome:
    """SearXNG's JSON -> at most `limit` hits, in SearXNG's order; anything malformed is skipped."""
    if not isinstance(data, dict) or not isinstance(data.get("results", []), list):
        raise SearchError("SearXNG answered JSON without a results list")
    hits: list[Hit] = []
    seen: set[str] = set()
    for item in _list(data.get("results")):
        if len(hits) >= limit:
            break
        if not isinstance(item, dict):
            continue
        url = web_url(item.get("url"))
        if url is None or url in seen:
            continue
        seen.add(url)
        engines = [e for e in _list(item.get("engines")) if isinstance(e, str)]
        engine = item.get("engine") if isinstance(item.get("engine"), str) else (engines[0] if engines else "")
        published = item.get("publishedDate")
        hits.append(Hit(title=_line(item.get("title"), MAX_TITLE) or url, url=url,
                        snippet=_line(item.get("content"), MAX_SNIPPET), engine=engine, engines=engines,
                        published=published if isinstance(published, str) else None))
    suggestions = [_line(s, MAX_TITLE) for s in _list(data.get("suggestions")) if isinstance(s, str)][:10]
    unresponsive = []
    for entry in _list(data.get("unresponsive_engines")):
        if isinstance(entry, list | tuple) and entry:
            unresponsive.append(": ".join(str(p) for p in entry[:2]))
        elif isinstance(entry, str):
            unresponsive.append(entry)
    return SearchOutcome(query=query, results=hits, suggestions=suggestions, unresponsive_engines=unresponsive)


def request_params(cfg: WebSkillsConfig, query: str, *, categories: list[str] | None = None,
                   language: str | None = None, safesearch: int | None = None, page: int = 1) -> dict[str, str]:
    return {
        "q": query,
        "format": "json",
        "categories": ",".join(categories or cfg.categories),
        "language": language or cfg.language,
        "safesearch": str(cfg.safesearch if safesearch is None else safesearch),
        "pageno": str(page),
    }


async def search(cfg: WebSkillsConfig, query: str, *, categories: list[str] | None = None,
                 language: str | None = None, safesearch: int | None = None, limit: int | None = None,
                 page: int = 1) -> SearchOutcome:
    """One query to the configured SearXNG; a clear SearchError for each way it can fail."""
    base = cfg.searxng_url
    params = request_params(cfg, query, categories=categories, language=language, safesearch=safesearch, page=page)
    try:
        # trust_env=False: no proxy from the environment may carry the queries somewhere else
        async with httpx.AsyncClient(timeout=cfg.timeout_s, follow_redirects=False, trust_env=False,
                                     verify=_tls()) as http:
            response = await http.get(f"{base}/search", params=params, headers={"Accept": "application/json"})
    except httpx.TimeoutException:
        raise SearchError(f"SearXNG at {base} did not answer within {cfg.timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise SearchError(f"SearXNG at {base} is unreachable ({type(exc).__name__}: {exc})") from None
    if response.status_code == 403:
        raise SearchError(f"SearXNG at {base} refused format=json (403): add json to search.formats "
                          "in its settings.yml")
    if response.status_code == 429:
        raise SearchError(f"SearXNG's limiter at {base} refused the hub (429): turn the limiter off "
                          "(server.limiter: false) or pass the hub's address")
    if response.status_code != 200:
        detail = ""
        try:
            detail = str(response.json().get("error", ""))
        except (ValueError, AttributeError):
            detail = response.text[:200]
        raise SearchError(f"SearXNG at {base} answered {response.status_code}: {detail or response.reason_phrase}")
    try:
        data = response.json()
    except ValueError:
        raise SearchError(f"SearXNG at {base} did not answer JSON (is {base} really SearXNG?)") from None
    return parse_response(data, query, limit or cfg.max_results)
