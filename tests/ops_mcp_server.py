"""A small FastMCP server for the restart_mcp tests: `python tests/ops_mcp_server.py PORT [TOKEN]`.

Runs in a real container (host network) so a restart is a real process restart.
"""

from __future__ import annotations

import sys

from fastmcp import FastMCP


def build(token: str | None = None) -> FastMCP:
    auth = None
    if token:
        from fastmcp.server.auth import StaticTokenVerifier

        auth = StaticTokenVerifier({token: {"client_id": "ops-test", "scopes": []}})
    mcp = FastMCP("ops-test", auth=auth)

    @mcp.tool(description="Add two integers")
    def add(a: int, b: int) -> int:
        return a + b

    @mcp.tool(description="Echo the text back")
    def echo(text: str) -> str:
        return text

    @mcp.tool(description="Say which process answered")
    def whoami() -> str:
        import os

        return str(os.getpid())

    return mcp


if __name__ == "__main__":
    port = int(sys.argv[1])
    build(sys.argv[2] if len(sys.argv) > 2 else None).run(
        transport="http", host="127.0.0.1", port=port, path="/mcp", show_banner=False)
