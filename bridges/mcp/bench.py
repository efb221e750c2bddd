"""`sovhub bench mcp`: what the hub adds to a fast tool call, against a bare FastMCP server.

Both servers run as their own processes with the same trivial tool (`ping`), the same transport
(streamable HTTP through uvicorn, or stdio) and the same Host guard; the hub's call goes the whole
way (validation, permission, a job row and its events in SQLite, the result). Calls alternate
between the two servers in rounds, so drift on a shared machine hits both alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from hub.jobs import SkillRun
from hub.registry import SkillRegistry, skill

ROOT = Path(__file__).resolve().parents[2]


class PingParams(BaseModel):
    text: str = Field(description="echoed back")


class PingResult(BaseModel):
    text: str


@skill(name="ping", description="Echo the text back (benchmark tool)", params=PingParams, result=PingResult)
async def ping(run: SkillRun, params: PingParams) -> PingResult:
    return PingResult(text=params.text)


def bench_registry() -> SkillRegistry:
    registry = SkillRegistry()
    registry.register(ping)
    return registry


def bare_server():
    from fastmcp import FastMCP

    mcp = FastMCP("bare")

    @mcp.tool(description="Echo the text back (benchmark tool)")
    async def ping(text: str = Field(description="echoed back")) -> PingResult:
        return PingResult(text=text)

    return mcp


# -- the server processes -----------------------------------------------------------------------
async def _serve_http(kind: str, data_dir: str) -> None:
    import uvicorn

    from bridges.mcp.bridge import MCPBridge
    from hub.config import load_config
    from hub.core import Hub
    from hub.heap import settle_after_startup
    from hub.net import QuietServer, bind_tcp

    if kind == "hub":
        config = load_config(None, overrides={"storage": {"data_dir": data_dir}, "mcp": {"port": 0}})
        hub = await Hub.start(config, skills=bench_registry())
        bridge = MCPBridge(hub)
        await bridge.start()
        settle_after_startup()  # as `sovhub mcp http` and `sovhub run` do once they serve (hub.heap)
        print(f"READY {bridge.url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await bridge.stop()
            await hub.stop()
    sock = bind_tcp("127.0.0.1", 0, "the bare MCP server")
    app = bare_server().http_app(path="/mcp", transport="http", host_origin_protection=True,
                                 allowed_hosts=["127.0.0.1"])
    server = QuietServer(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", ws="none"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    print(f"READY http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
    await task


async def _serve_stdio_bare() -> None:
    await bare_server().run_stdio_async(show_banner=False)


# -- the client side ----------------------------------------------------------------------------
async def _spawn_http(kind: str, data_dir: str) -> tuple[asyncio.subprocess.Process, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FASTMCP_LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridges.mcp.bench", "serve-http", kind, data_dir, cwd=str(ROOT), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if not line.startswith(b"READY "):
        proc.kill()
        raise RuntimeError(f"{kind} MCP server did not start")
    return proc, line.split()[1].decode()


def _stdio_transport(kind: str, data_dir: str):
    from fastmcp.client.transports import StdioTransport

    env = {**os.environ, "PYTHONPATH": str(ROOT), "FASTMCP_LOG_LEVEL": "WARNING"}
    if kind == "hub":
        config = Path(data_dir) / "bench.yaml"
        config.write_text(f"storage:\n  data_dir: {data_dir}\nlogging:\n  level: WARNING\n")
        return StdioTransport(command=str(Path(sys.executable).with_name("sovhub")), cwd=str(ROOT), env=env,
                              args=["mcp", "--config", str(config), "--registry", "bridges.mcp.bench:bench_registry"],
                              log_file=Path(os.devnull))
    return StdioTransport(command=sys.executable, args=["-m", "bridges.mcp.bench", "serve-stdio"], cwd=str(ROOT),
                          env=env, log_file=Path(os.devnull))


def _cpu_ms(pid: int | None) -> float:
    """CPU time (user + system, all threads) a server process has used so far, in ms (Linux /proc)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


async def _batch(client, n: int, into: list[float]) -> float:
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        result = await client.call_tool("ping", {"text": f"p{i}"})
        into.append(time.perf_counter() - t0)
        if result.structured_content != {"text": f"p{i}"}:
            raise RuntimeError(f"unexpected result {result.structured_content}")
    return time.perf_counter() - start


GOALS = {"ratio": ("min", 0.95)}


async def _run(calls: int, rounds: int, warmup: int, transport: str) -> dict[str, Any]:
    from fastmcp import Client

    from hub.bench.rounds import Clock, load, summarise

    if transport not in ("http", "stdio"):
        raise ValueError("transport must be http or stdio")
    clock = Clock()
    with tempfile.TemporaryDirectory(prefix="sovhub-bench-mcp-") as tmp:
        procs: list[asyncio.subprocess.Process] = []
        results: list[dict[str, Any]] = []
        try:
            targets: dict[str, Any] = {}
            pids: dict[str, int] = {}  # the server processes (HTTP): their CPU per call is measured
            for kind in ("bare", "hub"):
                data_dir = str(Path(tmp) / kind)
                Path(data_dir).mkdir()
                if transport == "http":
                    proc, url = await _spawn_http(kind, data_dir)
                    procs.append(proc)
                    pids[kind] = proc.pid
                    targets[kind] = url
                else:
                    targets[kind] = _stdio_transport(kind, data_dir)
            async with Client(targets["bare"], timeout=60) as bare, Client(targets["hub"], timeout=60) as hub:
                clients = {"bare": bare, "hub": hub}
                for client in clients.values():
                    await _batch(client, warmup, [])
                per = max(1, calls // rounds)
                for _ in range(rounds):
                    # within a round, alternate short batches so drift on a shared machine hits both alike
                    latencies: dict[str, list[float]] = {"bare": [], "hub": []}
                    elapsed = {"bare": 0.0, "hub": 0.0}
                    cpu = {"bare": 0.0, "hub": 0.0}
                    step = max(1, per // 8)
                    for b in range(0, per, step):
                        for kind in (("bare", "hub") if (b // step) % 2 == 0 else ("hub", "bare")):
                            before = _cpu_ms(pids.get(kind))
                            elapsed[kind] += await _batch(clients[kind], min(step, per - b), latencies[kind])
                            cpu[kind] += _cpu_ms(pids.get(kind)) - before
                    results.append(_round(latencies, elapsed, cpu if pids else None))
        finally:
            for proc in procs:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.wait(), 10)
    out: dict[str, Any] = {"bench": "mcp", "transport": "streamable-http" if transport == "http" else "stdio",
                           "tool": "ping", "calls_each_round": per,
                           **summarise(results, rank="ratio", goals=GOALS)}
    out["layers"] = await _layers(min(per * rounds, 300))
    out.update(await _job_path(min(per * rounds, 200)))
    out.update(load())
    out.update(clock.figures())
    return out


def _round(latencies: dict[str, list[float]], elapsed: dict[str, float],
           cpu: dict[str, float] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("bare", "hub"):
        lat = sorted(latencies[kind])
        out[f"{kind}_calls_per_s"] = round(len(lat) / elapsed[kind], 1)
        out[f"{kind}_p50_ms"] = round(statistics.median(lat) * 1000, 3)
        out[f"{kind}_p90_ms"] = round(lat[max(0, int(len(lat) * 0.9) - 1)] * 1000, 3)
        if cpu is not None:  # the server process's CPU per call: what other load does not inflate
            out[f"{kind}_server_cpu_ms"] = round(cpu[kind] / len(lat), 3)
    out["ratio"] = round(out["hub_calls_per_s"] / out["bare_calls_per_s"], 3)
    out["hub_extra_p50_ms"] = round(out["hub_p50_ms"] - out["bare_p50_ms"], 3)
    if cpu is not None and cpu["hub"] > 0:
        out["server_cpu_ratio"] = round(out["bare_server_cpu_ms"] / out["hub_server_cpu_ms"], 3)
    return out


async def _layers(n: int) -> dict[str, Any]:
    """Where a hub call's time goes, layer by layer, in CPU ms per call (one process, no network):

    - `registry_lookup` / `argument_validation` / `result_serialisation`: the registry's parts alone;
    - `job_path`: `hub.run_skill` (validation, permission, job row and events in SQLite, the result);
    - `fastmcp_dispatch_bare`: a call through FastMCP's in-memory transport to the bare server;
    - `fastmcp_hub_tool`: the same to the hub's server (without auth: stdio-like), so
      `hub_tool_extra` = what the hub's tool adds over a bare FastMCP tool, inside FastMCP;
    - the ASGI/auth/HTTP share is the end-to-end `hub_extra_p50_ms` less `hub_tool_extra`.
    """
    from fastmcp import Client

    from bridges.mcp.access import Caller
    from bridges.mcp.server import build_server
    from hub.config import load_config
    from hub.context import Context
    from hub.core import Hub

    def per_call(fn, count: int) -> float:
        cpu = time.process_time()
        for _ in range(count):
            fn()
        return (time.process_time() - cpu) * 1000 / count

    async def per_call_async(fn, count: int) -> float:
        for _ in range(min(20, count)):
            await fn()
        cpu = time.process_time()
        for _ in range(count):
            await fn()
        return (time.process_time() - cpu) * 1000 / count

    registry = bench_registry()
    skill = registry.get("ping")
    out: dict[str, Any] = {"unit": "CPU ms per call", "calls": n}
    out["registry_lookup"] = round(per_call(lambda: registry.get("ping"), n * 10), 4)
    out["argument_validation"] = round(per_call(lambda: skill.validate_params({"text": "x"}), n * 10), 4)
    result = PingResult(text="x")
    out["result_serialisation"] = round(per_call(lambda: result.model_dump(mode="json"), n * 10), 4)
    with tempfile.TemporaryDirectory(prefix="sovhub-bench-mcp-") as tmp:
        hub = await Hub.start(load_config(None, overrides={"storage": {"data_dir": tmp}}), skills=registry)
        try:
            ctx = Context.new("mcp", user="bench")
            out["job_path"] = round(await per_call_async(lambda: hub.run_skill("ping", {"text": "x"}, ctx), n), 3)
            owner = Caller(name="bench", role="owner", via="stdio")
            async with Client(bare_server()) as bare, \
                    Client(build_server(hub, default_caller=owner, with_auth=False)) as served:
                out["fastmcp_dispatch_bare"] = round(await per_call_async(
                    lambda: bare.call_tool("ping", {"text": "x"}), n), 3)
                out["fastmcp_hub_tool"] = round(await per_call_async(
                    lambda: served.call_tool("ping", {"text": "x"}), n), 3)
        finally:
            await hub.stop()
    out["hub_tool_extra"] = round(out["fastmcp_hub_tool"] - out["fastmcp_dispatch_bare"], 3)
    return out


async def _job_path(n: int) -> dict[str, Any]:
    """The share of the extra time spent in the core's job path (`hub.run_skill`), without MCP."""
    from hub.config import load_config
    from hub.context import Context
    from hub.core import Hub

    with tempfile.TemporaryDirectory(prefix="sovhub-bench-mcp-") as tmp:
        hub = await Hub.start(load_config(None, overrides={"storage": {"data_dir": tmp}}), skills=bench_registry())
        try:
            lat: list[float] = []
            for i in range(n + 20):
                t0 = time.perf_counter()
                await hub.run_skill("ping", {"text": "x"}, Context.new("mcp", user="bench"))
                if i >= 20:
                    lat.append(time.perf_counter() - t0)
            sync = (await hub.store.db.execute_fetchall("PRAGMA synchronous"))[0][0]
        finally:
            await hub.stop()
    return {"job_path_p50_ms": round(statistics.median(lat) * 1000, 2),
            "sqlite_synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(sync, sync)}


# -- stdio start-up ------------------------------------------------------------------------------
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "sovhub-bench", "version": "0"}}}


async def _start_once(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Spawn a stdio server as a client would; ms to the initialize answer, to tools/list, to exit on EOF."""
    import json

    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(*argv, cwd=str(ROOT), env=env, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None

    async def answer(msg_id: int) -> dict[str, Any]:
        while True:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            if not line:
                raise RuntimeError(f"{argv[0]} closed stdout before answering request {msg_id}")
            msg = json.loads(line)
            if msg.get("id") == msg_id:
                return msg

    try:
        proc.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
        await proc.stdin.drain()
        await answer(1)
        initialize = time.perf_counter() - t0
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode() + b"\n")
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).encode() + b"\n")
        await proc.stdin.drain()
        listed = await answer(2)
        if not listed.get("result", {}).get("tools"):
            raise RuntimeError(f"tools/list gave no tools: {listed}")
        tools = time.perf_counter() - t0
        t1 = time.perf_counter()
        proc.stdin.close()
        code = await asyncio.wait_for(proc.wait(), 30)
        if code != 0:
            raise RuntimeError(f"{' '.join(argv[:3])} exited with {code} on EOF")
        return {"initialize": initialize, "tools_list": tools, "exit_on_eof": time.perf_counter() - t1}
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _stdio_start(rounds: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FASTMCP_LOG_LEVEL": "WARNING"}
    env.pop("SOVHUB_CONFIG", None)
    sovhub = str(Path(sys.executable).with_name("sovhub"))
    with tempfile.TemporaryDirectory(prefix="sovhub-bench-mcp-") as tmp:
        config = Path(tmp) / "bench.yaml"
        # The whole registry, as a client sees it; no default MCP port in use, so no "hub already runs" probe.
        config.write_text(f"storage:\n  data_dir: {tmp}\nlogging:\n  level: WARNING\nmcp:\n  port: 1\n")
        argv = {"bare": [sys.executable, "-m", "bridges.mcp.bench", "serve-stdio"],
                "hub": [sovhub, "mcp", "--config", str(config)]}
        samples: dict[str, list[dict[str, float]]] = {"bare": [], "hub": []}
        for r in range(rounds):
            for kind in (("bare", "hub") if r % 2 == 0 else ("hub", "bare")):
                samples[kind].append(await _start_once(argv[kind], env))
    out: dict[str, Any] = {"transport": "stdio", "measure": "spawn -> initialize answer", "rounds": rounds}
    for kind, runs in samples.items():
        for key in ("initialize", "tools_list", "exit_on_eof"):
            out[f"{kind}_{key}_ms"] = round(statistics.median(r[key] for r in runs) * 1000)
    out["hub_initialize_max_ms"] = round(max(r["initialize"] for r in samples["hub"]) * 1000)
    out["initialize_ratio"] = round(out["hub_initialize_ms"] / out["bare_initialize_ms"], 2)
    out["target_initialize_ms"] = 2000
    return out


def run(calls: int = 600, rounds: int = 3, warmup: int = 30, transport: str = "http",
        stdio_start: bool = False) -> dict[str, Any]:
    """calls/s and p50 of `ping` through the hub's MCP server vs a bare FastMCP server.

    `--stdio-start`: instead, how long a client waits for `initialize` when it spawns `sovhub mcp`
    (the whole registry) against a bare FastMCP stdio server, and whether both exit on EOF.
    """
    if stdio_start:
        return asyncio.run(_stdio_start(max(1, min(rounds, 5))))
    return asyncio.run(_run(calls, rounds, warmup, transport))


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if sys.argv[1] == "serve-http":
        asyncio.run(_serve_http(sys.argv[2], sys.argv[3]))
    elif sys.argv[1] == "serve-stdio":
        asyncio.run(_serve_stdio_bare())
