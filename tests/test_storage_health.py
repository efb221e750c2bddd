"""The storage health check: a full disk shows in /status, /metrics and the status page, and clears itself."""

from __future__ import annotations

import httpx
import pytest

from hub.commands.handlers import _fmt_status
from hub.context import Context
from tests.status_helpers import status_hub
from tests.storage_helpers import disk_full

parser = pytest.importorskip("prometheus_client.parser", reason="prometheus-client is a dev extra")


def _sample(text: str, name: str) -> float:
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"no {name} in the exposition")


async def test_a_full_disk_is_reported_by_status_metrics_and_page_until_it_has_room(tmp_path):
    async with status_hub(tmp_path) as (hub, url), httpx.AsyncClient(base_url=url) as http:
        assert _sample((await http.get("/metrics")).text, "sovhub_storage_errors_total") == 0
        async with disk_full(hub.store):
            await hub.run_skill("echo", {"text": "x" * 20_000}, Context.new("cli"))
            with pytest.raises(Exception, match="storage full"):
                await hub.jobs.flush()
            metrics = (await http.get("/metrics")).text
            assert _sample(metrics, "sovhub_storage_errors_total") >= 1
            assert _sample(metrics, "sovhub_storage_ok") == 0
            api = (await http.get("/api/status")).json()
            assert api["storage"]["state"] == "full"
            assert "database or disk is full" in api["storage"]["last_error"]
            page = (await http.get("/")).text
            assert 'id="storage"' in page and "storage full (database or disk is full)" in page
            chat = _fmt_status(await hub.status())
            assert "storage: state full" in chat.lower() and "database or disk is full" in chat
        await hub.jobs.flush()  # room again: the queued rows are written
        metrics = (await http.get("/metrics")).text
        assert _sample(metrics, "sovhub_storage_ok") == 1 and _sample(metrics, "sovhub_storage_errors_total") >= 1
        assert (await http.get("/api/status")).json()["storage"]["state"] == "ok"
