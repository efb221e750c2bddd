"""`sovhub bench startup`: how fast the hub is ready and how much memory it holds idle.

run_ready_s: `sovhub run` with the MCP server (HTTP) and the status page, from spawn until the
status page answers; run_idle_rss_mb: its resident memory after `idle_s` of quiet (VmRSS of the hub
process). mcp_initialize_s: `sovhub mcp` (stdio) from spawn until it answers `initialize`.
baseline_python_s: a bare `python -c pass` in the same run, so the figures compare across machines
(ratios *_vs_python). Medians of `rounds`; the machine's load average is reported beside them.
run_ready_cpu_s and mcp_initialize_cpu_s are the process's own CPU time (user + system) at that
moment; *_cpu_wait_s is how long its threads sat runnable in the run queue waiting for a CPU
(/proc/PID/task/*/schedstat). On a shared, loaded machine the wall figures mostly measure the
neighbours: wall = on-CPU + waiting for a CPU + sleeping/blocked, so *_without_cpu_wait_s (wall
minus the wait) is what the same start-up takes when it has a CPU to itself. The hub's own sources
are compiled to bytecode first, as an installation has them (pip compiles at install): an editable
checkout run with PYTHONDONTWRITEBYTECODE would otherwise compile every edited module at every start.
"""

from __future__ import annotations

import compileall
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from hub.sim.serve import free_port

GOAL_READY_S = 2.0
GOAL_IDLE_RSS_MB = 150.0


def _sovhub() -> list[str]:
    exe = shutil.which("sovhub")
    return [exe] if exe else [sys.executable, "-m", "hub.cli"]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_wait_s(pid: int) -> float:
    """Seconds the process's threads were runnable but waiting for a CPU (schedstat's 2nd field)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that just ended
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _config(data_dir: Path, mcp_port: int, status_port: int) -> Path:
    path = data_dir / "hub.yaml"
    path.write_text(json.dumps({
        "storage": {"data_dir": str(data_dir)},
        "matrix": {"enabled": False},
        "mcp": {"enabled": True, "host": "127.0.0.1", "port": mcp_port, "tokens": []},
        "status": {"enabled": True, "host": "127.0.0.1", "port": status_port},
        "api": {"enabled": False},
        "schedules": [],
    }))  # JSON is YAML
    return path


def _warm_bytecode() -> None:
    """Write the hub's .pyc files (py_compile writes them whatever PYTHONDONTWRITEBYTECODE says)."""
    root = Path(__file__).resolve().parents[2]
    for package in ("hub", "bridges", "skills"):
        if (root / package).is_dir():
            compileall.compile_dir(root / package, quiet=1)


def _baseline() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t0


def _run_once(idle_s: float, timeout_s: float) -> tuple[float, float, float, float]:
    with tempfile.TemporaryDirectory(prefix="sovhub-bench-startup-") as tmp:
        status_port = free_port()
        config = _config(Path(tmp), free_port(), status_port)
        t0 = time.perf_counter()
        proc = subprocess.Popen([*_sovhub(), "run", "--config", str(config)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            ready = None
            while time.perf_counter() - t0 < timeout_s:
                if proc.poll() is not None:
                    raise RuntimeError(f"sovhub run exited with {proc.returncode} before it was ready")
                try:
                    if httpx.get(f"http://127.0.0.1:{status_port}/", timeout=1.0).status_code < 500:
                        ready = time.perf_counter() - t0
                        cpu, wait = _cpu_s(proc.pid), _cpu_wait_s(proc.pid)
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.02)
            if ready is None:
                raise RuntimeError(f"sovhub run was not ready within {timeout_s:g} s")
            time.sleep(idle_s)
            return ready, cpu, _rss_mb(proc.pid), wait
        finally:
            _stop(proc)


def _mcp_once(timeout_s: float) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory(prefix="sovhub-bench-mcp-") as tmp:
        config = _config(Path(tmp), free_port(), free_port())
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "bench", "version": "0"}}}
        t0 = time.perf_counter()
        proc = subprocess.Popen([*_sovhub(), "mcp", "--config", str(config)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write((json.dumps(init) + "\n").encode())
            proc.stdin.flush()
            line = proc.stdout.readline()  # the first line on stdout is the answer
            elapsed = time.perf_counter() - t0
            cpu, wait = _cpu_s(proc.pid), _cpu_wait_s(proc.pid)
            if not line or json.loads(line).get("id") != 1:
                raise RuntimeError(f"sovhub mcp did not answer initialize: {line[:200]!r}")
            if elapsed > timeout_s:
                raise RuntimeError(f"sovhub mcp answered after {elapsed:.1f} s")
            return elapsed, cpu, wait
        finally:
            if proc.stdin is not None:
                proc.stdin.close()
            _stop(proc)


def run(rounds: int = 3, idle_s: float = 3.0, timeout_s: float = 60.0) -> dict[str, Any]:
    _warm_bytecode()
    base = statistics.median(_baseline() for _ in range(rounds))
    runs = [_run_once(idle_s, timeout_s) for _ in range(rounds)]
    mcp = [_mcp_once(timeout_s) for _ in range(rounds)]
    ready = statistics.median(r for r, *_ in runs)
    rss = statistics.median(r[2] for r in runs)
    init = statistics.median(w for w, *_ in mcp)
    return {
        "rounds": rounds, "load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
        "baseline_python_s": round(base, 3),
        "run_ready_s": round(ready, 3), "run_ready_vs_python": round(ready / base, 1),
        "run_ready_cpu_s": round(statistics.median(r[1] for r in runs), 3),
        "run_ready_cpu_wait_s": round(statistics.median(r[3] for r in runs), 3),
        "run_ready_without_cpu_wait_s": round(statistics.median(r[0] - r[3] for r in runs), 3),
        "run_idle_rss_mb": round(rss, 1),
        "mcp_initialize_s": round(init, 3), "mcp_initialize_vs_python": round(init / base, 1),
        "mcp_initialize_cpu_s": round(statistics.median(m[1] for m in mcp), 3),
        "mcp_initialize_cpu_wait_s": round(statistics.median(m[2] for m in mcp), 3),
        "mcp_initialize_without_cpu_wait_s": round(statistics.median(m[0] - m[2] for m in mcp), 3),
        "goal": {"ready_s": GOAL_READY_S, "idle_rss_mb": GOAL_IDLE_RSS_MB},
        "meets_goal": ready <= GOAL_READY_S and rss <= GOAL_IDLE_RSS_MB,
    }
