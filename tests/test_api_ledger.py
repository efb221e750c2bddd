"""One ledger, one picture: every gateway request is a cost row under its token's name, and spend per
client shows on the status page, in /metrics, in `sovhub status` and in /budget."""

from __future__ import annotations

import httpx
import openai

from hub.cli.status import collect
from hub.commands import CommandEnv, dispatch
from hub.context import Context
from tests.api_helpers import PRIVATE, WRITER, api_bed, cost_rows
from tests.test_commands import Key, RecordingIO


async def test_spend_per_client_on_the_status_page_metrics_cli_status_and_budget(tmp_path):
    async with api_bed(tmp_path, status=True) as (bed, url):
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=WRITER, max_retries=0) as aider, \
                openai.AsyncOpenAI(base_url=url + "/v1", api_key=PRIVATE, max_retries=0) as vibe:
            await aider.chat.completions.create(model="claude", messages=[{"role": "user", "content": "to claude"}])
            await vibe.chat.completions.create(model="local", messages=[{"role": "user", "content": "private"}])
        rows = await cost_rows(bed.hub)
        assert {(r["client"], r["provider"]) for r in rows} == {("aider", "anthropic"), ("vibe", "local")}
        claude_usd = next(r["usd"] for r in rows if r["client"] == "aider")
        assert claude_usd > 0

        page = bed.hub.extras["status_page"].url
        async with httpx.AsyncClient() as h:
            status = (await h.get(page + "/api/status")).json()
            metrics = (await h.get(page + "/metrics")).text
            html = (await h.get(page + "/")).text
        clients = {c["client"]: c for c in status["clients"]}
        assert clients["aider"]["month_usd"] == round(claude_usd, 6) and clients["vibe"]["month_usd"] == 0
        assert status["api"]["clients"]["vibe"]["requests"] == [{"route": "local", "result": "ok", "n": 1}]
        line = next(x for x in metrics.splitlines() if x.startswith('sovhub_client_spend_usd{client="aider"'))
        assert line == f'sovhub_client_spend_usd{{client="aider",origin="http"}} {round(claude_usd, 6)!r}'
        assert 'sovhub_api_requests_total{client="vibe",result="ok",route="local"} 1' in metrics
        assert "Per client, this month" in html and "aider" in html

        cli = await collect(bed.hub.config)
        assert {c["client"] for c in cli["clients"]} == {"aider", "vibe"}

        io = RecordingIO()
        env = CommandEnv(hub=bed.hub, context=Context.new("matrix", user="@a:x"), io=io, conversation=Key("!r:x"))
        assert await dispatch(env, "/budget")
        assert "aider (http)" in io.replies[0] and "vibe" not in io.replies[0]  # only clients that spent
