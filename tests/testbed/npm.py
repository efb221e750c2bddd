"""Node 22 and the official MCP JavaScript tools, installed from npm into a cached directory.

The MCP conformance suite and the MCP inspector CLI are JavaScript programs; they are the tests'
third-party witnesses that the hub's MCP server works for clients that are not written in Python.
Node itself comes from npm too (the `node` package ships the binary), so the host's own Node version
does not matter. Like the Synapse venv, the install is built once under the test cache root, guarded
by a lock file so two sessions never build it at the same time, and marked ready only when complete.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import cache_root

NODE = "node@22"
CONFORMANCE = "@modelcontextprotocol/conformance@0.1.16"
INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
PACKAGES = (NODE, CONFORMANCE, INSPECTOR)
READY_MARKER = ".sovhub-ready"


@dataclass(frozen=True)
class McpNodeTools:
    root: Path

    @property
    def node(self) -> str:
        return str(self.root / "node_modules" / ".bin" / "node")

    def conformance(self, *args: str) -> list[str]:
        cli = self.root / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
        return [self.node, str(cli), *args]

    def inspector(self, *args: str) -> list[str]:
        """The inspector's command line client (`npx @modelcontextprotocol/inspector --cli ...`)."""
        package = self.root / "node_modules" / "@modelcontextprotocol" / "inspector"
        meta = json.loads((package / "package.json").read_text())
        bin_field = meta["bin"]
        entry = bin_field if isinstance(bin_field, str) else next(iter(bin_field.values()))
        return [self.node, str(package / entry), "--cli", *args]


def install_mcp_node_tools(root: Path | None = None) -> McpNodeTools:
    """npm-install Node 22, the conformance suite and the inspector once; safe when sessions race."""
    root = root or cache_root() / f"mcp-node-{_digest()}"
    root.parent.mkdir(parents=True, exist_ok=True)
    marker = root / READY_MARKER
    if marker.exists():
        return McpNodeTools(root)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to install the MCP conformance suite and inspector (apt-get install npm)")
    lock_path = root.parent / (root.name + ".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if marker.exists():
                return McpNodeTools(root)
            if root.exists():
                shutil.rmtree(root)  # half-built by an interrupted run
            root.mkdir()
            (root / "package.json").write_text(json.dumps({"name": "sovhub-mcp-witnesses", "private": True}))
            log = root.parent / (root.name + ".install.log")
            with open(log, "w") as out:
                cmd = [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *PACKAGES]
                rc = subprocess.run(cmd, cwd=root, stdout=out, stderr=subprocess.STDOUT, timeout=900).returncode
            if rc != 0:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"npm install {' '.join(PACKAGES)} failed:\n{tail}")
            marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return McpNodeTools(root)


def _digest() -> str:
    """A new package set gets a new directory, so a cached older install is never reused by mistake."""
    import hashlib

    return hashlib.sha256(" ".join(PACKAGES).encode()).hexdigest()[:10]
