"""Web research for publish_article: the local model proposes queries, the box's SearXNG answers,
the article cites numbered sources and ends with "Further reading".

Privacy: the model is the local one (`llm.py`), the queries go to `skills.web.searxng_url` and
nowhere else, and a query that carries something private from the notes (an IP address, an e-mail
address, a URL, a token-like string) is dropped before it leaves. Links: the article's "Further
reading" URLs come from SearXNG's results, never from the model's text, and a link the model wrote
to a URL that is neither a source nor in the notes is reduced to its text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from hub.errors import HubError
from hub.jobs import SkillRun
from skills.content.article import Draft
from skills.content.llm import local_complete
from skills.content.script import strip_thinking
from skills.web.searxng import SearchError, search

QUERIES_SYSTEM = (
    "You plan the web research for a technical blog article. From the author's notes, propose at most "
    "{n} short web search queries (3 to 8 words each) that find authoritative background: official "
    "documentation, papers, announcements. Write one query per line and nothing else. Never put "
    "anything private from the notes in a query: no host names, IP addresses, e-mail addresses, "
    "paths, tokens, customer or people's names."
)
SOURCES_INSTRUCTIONS = (
    "\n\nBelow the notes are numbered web sources found for this article. Use a source only where it "
    "supports a point, and cite it right there as [n] with its number. Do not write URLs or a list of "
    "sources or references yourself: the list of cited sources is added after the article."
)
MAX_QUERY_CHARS = 120
FURTHER_READING = "Further reading"

_PRIVATE = [
    re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"),                 # IPv4
    re.compile(r"\b[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){3,7}\b", re.I),  # IPv6
    re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"),                      # e-mail
    re.compile(r"\b[a-z][a-z0-9+.-]*://", re.I),                  # any URL
    re.compile(r"(?:^|\s)[~/][\w./-]*"),                          # a path
    re.compile(r"\b(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{24,}\b"),  # token-like
    re.compile(r"\b(?:sk|ghp|xox[bp]|glpat|hf)[-_][A-Za-z0-9_\-]{8,}", re.I),  # API key prefixes
    re.compile(r"\b[\w-]+\.(?:local|lan|internal|intranet|corp|home\.arpa)\b", re.I),  # private host names
]


def private(query: str) -> bool:
    """True when the query carries something that must not leave the box."""
    return any(p.search(query) for p in _PRIVATE)


def parse_queries(reply: str, limit: int) -> list[str]:
    """The model's lines -> at most `limit` distinct, bounded, non-private queries."""
    out: list[str] = []
    for raw in strip_thinking(reply).splitlines():
        line = re.sub(r"^\s*(?:[-*•]|\d{1,2}[.)])\s*", "", raw).strip().strip("\"'`").strip()
        line = re.sub(r"\s+", " ", line)
        if not line or line.endswith(":") or len(line) > MAX_QUERY_CHARS or private(line):
            continue
        if line.lower() not in (q.lower() for q in out):
            out.append(line)
        if len(out) >= limit:
            break
    return out


@dataclass(frozen=True)
class Source:
    number: int
    title: str
    url: str
    snippet: str


@dataclass
class Research:
    queries: list[str]
    sources: list[Source] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def brief(self) -> str:
        """The sources as the article prompt shows them (numbered, after the notes)."""
        if not self.sources:
            return ""
        lines = [f"[{s.number}] {s.title} — {s.snippet}".rstrip(" —") for s in self.sources]
        return "\n\n---\nWeb sources:\n" + "\n".join(lines)

    @property
    def instructions(self) -> str:
        return SOURCES_INSTRUCTIONS if self.sources else ""


async def gather(run: SkillRun, notes: str, *, max_tokens: int) -> Research:
    """Queries from the local model, each run on the configured SearXNG; sources numbered 1..n, each URL once."""
    web = run.config.skills.web
    reply = await local_complete(run, QUERIES_SYSTEM.format(n=web.research_queries), notes,
                                 max_tokens=min(max_tokens, 512))
    research = Research(parse_queries(reply, web.research_queries))
    await run.log("research queries", queries=research.queries)
    seen: set[str] = set()
    for query in research.queries:
        try:
            outcome = await search(web, query, limit=web.research_results)
        except SearchError as exc:
            research.failures.append(f"{query}: {exc}")
            await run.log("research query failed", query=query, error=str(exc))
            continue
        for hit in outcome.results:
            if hit.url not in seen:
                seen.add(hit.url)
                research.sources.append(Source(len(research.sources) + 1, hit.title, hit.url, hit.snippet))
    if research.queries and len(research.failures) == len(research.queries):
        raise HubError(f"the research found nothing: {research.failures[0]}; "
                       "publish with research=false to write from the notes alone")
    await run.log("research sources", sources=len(research.sources), failed=len(research.failures))
    return research


# -- citations -> Further reading (pure) --------------------------------------------------------------
_CITE = re.compile(r"\[(\d{1,3})\](?!\()")
_LINK = re.compile(r"(?<!!)\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"\n]*\")?\s*\)")
_AUTOLINK = re.compile(r"<([a-z][a-z0-9+.-]*:[^>\s]+)>", re.I)
_SOURCE_LIST = re.compile(  # the model's own list of sources: a heading and the list items under it
    r"^#{1,6}[ \t]*(?:further reading|references|sources|links|bibliography)[ \t]*:?[ \t]*\n"
    r"(?:[ \t]*(?:(?:[-*+]|\d{1,3}[.)])[ \t].*)?(?:\n|\Z))*", re.I | re.M)
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:", re.I)
_URL_IN_TEXT = re.compile(r"https?://[^\s<>()\[\]\"']+")


_CODE = re.compile(r"(^```.*?^```[^\n]*$|^~~~.*?^~~~[^\n]*$|`[^`\n]+`)", re.M | re.S)


def _outside_code(text: str, change) -> str:
    """Apply `change` to the prose only: fenced code blocks and inline code stay as written."""
    parts = _CODE.split(text)
    return "".join(part if i % 2 else change(part) for i, part in enumerate(parts))


def _markdown_url(url: str) -> str:
    return url.replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")


def _markdown_text(text: str) -> str:
    return re.sub(r"([\[\]\\*_`])", r"\\\1", text)


def cite(draft: Draft, research: Research, notes: str) -> tuple[Draft, list[str]]:
    """Renumber the sources the body cites (1..k in order of first citation), drop citations of
    unknown numbers, drop the model's own source list, reduce links to unknown URLs to their text,
    and append "Further reading". Returns the draft and the URLs listed."""
    by_number = {s.number: s for s in research.sources}
    allowed = {s.url for s in research.sources} | {u.rstrip(".,;:") for u in _URL_IN_TEXT.findall(notes)}
    body = draft.body

    def link(m: re.Match) -> str:  # a source, a URL of the notes, or a link inside the site
        url = m.group(2)
        inside = not _SCHEME.match(url) and not url.startswith("//")
        return m.group(0) if url in allowed or inside else m.group(1)

    order: dict[int, int] = {}

    def renumber(m: re.Match) -> str:
        number = int(m.group(1))
        if number not in by_number:
            return ""
        order.setdefault(number, len(order) + 1)
        return f"[{order[number]}]"

    def prose(text: str) -> str:
        text = _SOURCE_LIST.sub("", text)
        text = _LINK.sub(link, text)
        text = _AUTOLINK.sub(lambda m: m.group(0) if m.group(1) in allowed else "", text)
        return _CITE.sub(renumber, text)

    body = _outside_code(body, prose).rstrip()
    cited = [by_number[n] for n in order]
    if cited:
        items = "\n".join(f"{i}. [{_markdown_text(s.title)}]({_markdown_url(s.url)})"
                          for i, s in enumerate(cited, start=1))
        body = f"{body}\n\n## {FURTHER_READING}\n\n{items}"
    return replace(draft, body=body), [s.url for s in cited]
