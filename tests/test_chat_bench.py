"""`sovhub bench turn` runs end to end and reports the figures the issue asks for (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_turn_prints_one_json_object_with_the_overhead_percentiles():
    out = subprocess.run([sys.executable, "-m", "hub.cli", "bench", "turn", "--runs", "3", "--tokens", "16",
                          "--warmup", "0", "--json"], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout)
    assert result["runs"] == 3 and result["tokens"] == 16
    for key in ("direct_p50_ms", "hub_p50_ms", "overhead_p50_ms", "overhead_p99_ms"):
        assert isinstance(result[key], float)
