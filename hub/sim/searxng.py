"""SearXNG stand-in: `GET|POST /search?q=...&format=json` with SearXNG's real JSON shape.

The shape is `searx.webutils.get_json_response`: `query`, `number_of_results`, `results` (each with
`url`, `title`, `content`, `thumbnail`, `engine`, `template`, `parsed_url`, `img_src`, `priority`,
`engines`, `positions`, `score`, `category`, `publishedDate`), `answers`, `corrections`,
`infoboxes`, `suggestions` and `unresponsive_engines` (pairs of engine and translated error). Like
SearXNG: a format missing from `search.formats` is a 403, an empty `q` or a bad `safesearch` /
`pageno` is a 400 with `{"error": ...}`, and the limiter answers 429 in plain text.

The "index" is a small document list (option `documents`, or `POST /_sim/documents`); a query
matches documents sharing words with it, best first, filtered by `categories` (default general),
10 to a page. `GET /_sim/stats` counts requests and lists every query and every URL served, so a
test can prove where an article's links came from.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

PAGE_SIZE = 10
WORD_RE = re.compile(r"[a-z0-9][a-z0-9.+-]*")

DEFAULT_DOCUMENTS: list[dict[str, Any]] = [
    {"title": "SGLang documentation: speculative decoding", "url": "https://docs.sglang.ai/advanced_features/speculative_decoding.html",
     "content": "EAGLE-2 and EAGLE-3 speculative decoding in SGLang: draft model, topk, num steps and the "
                "overlap scheduler for faster single-stream decoding.", "engines": ["duckduckgo", "brave"]},
    {"title": "EAGLE-3: Scaling up inference acceleration of large language models",
     "url": "https://arxiv.org/abs/2503.01840",
     "content": "EAGLE-3 speculative decoding reaches up to 6.5x speed-up by training-time test and "
                "multi-layer feature fusion.", "engines": ["google", "duckduckgo"]},
    {"title": "NVIDIA DGX Spark: GB10 Grace Blackwell superchip",
     "url": "https://www.nvidia.com/en-us/products/workstations/dgx-spark/",
     "content": "DGX Spark with the GB10 superchip and 128 GB of unified memory for local AI "
                "development and inference.", "engines": ["bing", "google"]},
    {"title": "NVFP4: 4-bit floating point for Blackwell inference",
     "url": "https://developer.nvidia.com/blog/introducing-nvfp4-for-efficient-and-accurate-low-precision-inference/",
     "content": "NVFP4 quantization keeps accuracy close to FP8 while halving memory on Blackwell GPUs.",
     "engines": ["google"]},
    {"title": "Mistral Small 4 model card", "url": "https://huggingface.co/mistralai/Mistral-Small-4",
     "content": "Mistral Small 4: a 119B mixture-of-experts model with tool calling and long context.",
     "engines": ["brave"]},
    {"title": "Astro content collections", "url": "https://docs.astro.build/en/guides/content-collections/",
     "content": "Content collections with the glob loader and a schema for blog frontmatter.",
     "engines": ["duckduckgo"]},
    {"title": "SGLang server arguments: mem-fraction-static and chunked prefill",
     "url": "https://docs.sglang.ai/advanced_features/server_arguments.html",
     "content": "mem_fraction_static sets the memory for weights and KV cache; chunked_prefill_size "
                "bounds prefill memory.", "engines": ["duckduckgo"]},
    {"title": "GB10 news: desk-side AI supercomputer ships", "url": "https://news.example.com/gb10-ships",
     "content": "The GB10 desk-side machine ships to developers.", "engines": ["bing news"], "category": "news",
     "publishedDate": "2025-10-15T00:00:00"},
]


def _words(text: str) -> set[str]:
    return {w for w in WORD_RE.findall(text.lower()) if len(w) > 1}


class SearxSim:
    def __init__(self, documents: list[dict[str, Any]] | None, formats: list[str], limiter: bool,
                 unresponsive: list[str]) -> None:
        self.documents = list(documents if documents is not None else DEFAULT_DOCUMENTS)
        self.formats = formats
        self.limiter = limiter
        self.unresponsive = unresponsive
        self.requests = 0
        self.queries: list[dict[str, Any]] = []
        self.served_urls: list[str] = []

    def search(self, query: str, categories: list[str], pageno: int) -> tuple[int, list[dict[str, Any]]]:
        wanted = _words(query)
        scored = []
        for doc in self.documents:
            if doc.get("category", "general") not in categories:
                continue
            hits = len(wanted & _words(f"{doc['title']} {doc['content']} {doc['url']}"))
            if hits:
                scored.append((hits, doc))
        scored.sort(key=lambda pair: -pair[0])
        page = scored[(pageno - 1) * PAGE_SIZE: pageno * PAGE_SIZE]
        results = []
        for rank, (hits, doc) in enumerate(page, start=(pageno - 1) * PAGE_SIZE + 1):
            engines = list(doc.get("engines") or ["duckduckgo"])
            parts = urlsplit(doc["url"])
            results.append({
                "url": doc["url"], "title": doc["title"], "content": doc.get("content", ""),
                "thumbnail": None, "engine": engines[0], "template": "default.html",
                "parsed_url": [parts.scheme, parts.netloc, parts.path, "", parts.query, parts.fragment],
                "img_src": "", "priority": "", "engines": engines, "positions": [rank],
                "score": round(hits * len(engines) / rank, 6), "category": doc.get("category", "general"),
                "publishedDate": doc.get("publishedDate"),
            })
        return len(scored), results


def create_app(documents: list[dict[str, Any]] | None = None, formats: list[str] | None = None,
               limiter: bool = False, unresponsive: list[str] | None = None) -> Starlette:
    """`formats` defaults to html and json (SearXNG's own default is html only: enable json for the hub)."""
    sim = SearxSim(documents, formats or ["html", "json"], limiter, list(unresponsive or []))

    async def search(request: Request) -> Response:
        form: dict[str, Any] = dict(request.query_params)
        if request.method == "POST":
            form.update(dict(await request.form()))
        sim.requests += 1
        output = form.get("format", "html")
        if output not in ("html", "json", "csv", "rss"):
            output = "html"
        if output not in sim.formats:
            return PlainTextResponse("Forbidden", status_code=403)
        if sim.limiter:
            return PlainTextResponse("Too Many Requests", status_code=429)
        if output != "json":
            return PlainTextResponse("<html>the stand-in only renders JSON</html>", media_type="text/html")
        query = str(form.get("q", "")).strip()
        if not query:
            return JSONResponse({"error": "No query"}, status_code=400)
        safesearch = str(form.get("safesearch", "0"))
        if safesearch not in ("0", "1", "2"):
            return JSONResponse({"error": "Invalid value \"safesearch\""}, status_code=400)
        try:
            pageno = int(form.get("pageno", 1))
            if pageno < 1:
                raise ValueError
        except ValueError:
            return JSONResponse({"error": "Invalid value \"pageno\""}, status_code=400)
        categories = [c.strip() for c in str(form.get("categories", "general")).split(",") if c.strip()]
        total, results = sim.search(query, categories or ["general"], pageno)
        sim.queries.append({"q": query, "categories": categories, "language": form.get("language"),
                            "safesearch": int(safesearch), "pageno": pageno})
        sim.served_urls.extend(r["url"] for r in results)
        return JSONResponse({
            "query": query, "number_of_results": total if results else 0, "results": results, "answers": [],
            "corrections": [], "infoboxes": [], "suggestions": [f"{query} tutorial"] if results else [],
            "unresponsive_engines": [[name, "timeout"] for name in sim.unresponsive],
        })

    async def stats(request: Request) -> Response:
        return JSONResponse({"requests": sim.requests, "queries": sim.queries, "served_urls": sim.served_urls})

    async def set_documents(request: Request) -> Response:
        sim.documents = list((await request.json()).get("documents", []))
        return JSONResponse({"documents": len(sim.documents)})

    async def config(request: Request) -> Response:
        body = await request.json()
        sim.limiter = bool(body.get("limiter", sim.limiter))
        sim.formats = list(body.get("formats", sim.formats))
        sim.unresponsive = list(body.get("unresponsive", sim.unresponsive))
        return JSONResponse({"limiter": sim.limiter, "formats": sim.formats, "unresponsive": sim.unresponsive})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("OK")

    return Starlette(routes=[
        Route("/search", search, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/_sim/stats", stats),
        Route("/_sim/documents", set_documents, methods=["POST"]),
        Route("/_sim/config", config, methods=["POST"]),
    ])
