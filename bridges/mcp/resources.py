"""Job artifacts as MCP resources: `resources/read` of `sovhub://artifacts/<job>/<file>`.

The links tool results carry (`content.py`) resolve here. Reading one needs what reading the job
needs: over HTTP a valid token (the auth middleware), and the job must be the caller's own unless
the caller is an owner, the same rule as `job_status`. A file is named by job and file name only;
nothing outside that job's artifact directory can be reached.
"""

# No `from __future__ import annotations`: FastMCP reads the template function's signature.
import asyncio
import logging
from typing import TYPE_CHECKING

from fastmcp import FastMCP
from fastmcp.exceptions import ResourceError
from fastmcp.resources.base import ResourceContent, ResourceResult

from bridges.mcp.access import Caller, current_caller
from bridges.mcp.content import URI_TEMPLATE, artifact_path, mime_type
from hub.errors import UnknownJob

if TYPE_CHECKING:
    from hub.core import Hub

log = logging.getLogger(__name__)
READ_MAX = 200_000_000  # bytes in one resources/read answer (base64 on the wire)


def add_artifact_resources(mcp: FastMCP, hub: "Hub", *, default_caller: Caller | None) -> None:
    @mcp.resource(URI_TEMPLATE, name="artifact", mime_type="application/octet-stream",
                  description="A file a job produced (image, audio, article); links come with tool results")
    async def artifact(job_id: str, filename: str) -> ResourceResult:
        who = current_caller(default_caller)
        missing = f"no artifact {filename!r} of job {job_id!r}"
        try:
            record = await hub.jobs.get(job_id)
        except UnknownJob:
            raise ResourceError(missing) from None
        if not who.is_owner and not (record.context.origin == "mcp" and record.context.user == who.name):
            raise ResourceError(missing + " among your jobs (only the owner role reads other callers' artifacts)")
        path = artifact_path(hub.config.storage.artifacts_dir, job_id, filename)
        if path is None:
            raise ResourceError(missing)
        size = path.stat().st_size
        if size > READ_MAX:
            raise ResourceError(f"{filename} is {size} bytes, more than one read may carry ({READ_MAX})")
        data = await asyncio.to_thread(path.read_bytes)
        return ResourceResult([ResourceContent(data, mime_type=mime_type(path))])
