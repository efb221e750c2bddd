"""The simulated GB10: the `hub/sim` stand-ins as residents of the hub's scheduler.

With the resident-model scheduler in the build, each stand-in is a real server process
(`python -m hub.sim NAME --port P`) that the scheduler's process driver starts and stops, so a
swap is a real stop and a real start with a health probe — only shorter than on the GB10.
Without the scheduler every stand-in runs in-process at once (no swaps to watch).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.sim.serve import AppServer, free_port

log = logging.getLogger(__name__)

# name -> (stand-in module, kind, memory on the real GB10, health path, what it stands for)
RESIDENTS: dict[str, tuple[str, str, float, str, str]] = {
    "sglang": ("sglang", "llm", 94, "/health", "SGLang · Mistral Small 4 119B"),
    "comfyui": ("comfyui", "image", 40, "/system_stats", "ComfyUI · FLUX.1-schnell"),
    "vllm-omni": ("tts", "tts", 24, "/v1/models", "vllm-omni · Voxtral 4B TTS"),
}


def scheduler_available() -> bool:
    return importlib.util.find_spec("hub.gpu.component") is not None


def _options(name: str, data_dir: Path, load_seconds: float) -> dict[str, Any]:
    if name == "sglang":
        return {"load_seconds": load_seconds, "tokens_per_s": 40}
    if name == "comfyui":
        return {"base_dir": str(data_dir / "comfyui"), "step_delay": 0.15}
    return {"engine": "espeak"}


@dataclass
class SimFleet:
    data_dir: Path
    load_seconds: float = 2.0
    ports: dict[str, int] = field(default_factory=dict)
    managed: bool = True  # True: the scheduler starts/stops processes; False: all run in-process
    _servers: list[AppServer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ports = {name: free_port() for name in RESIDENTS}
        self.managed = scheduler_available()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def residents_config(self) -> dict[str, Any]:
        """The `residents:` section: the real GB10 memory figures, shortened timeouts."""
        out: dict[str, Any] = {"pool": {"memory_gb": 128, "reserve_gb": 8}, "min_residency_s": 3,
                               "max_wait_s": {"interactive": 120, "skill": 300, "scheduled": 600},
                               # the pool is simulated: this machine's free memory says nothing about it
                               "memory_guard": {"enabled": False}}
        for name, (module, kind, memory, health, _) in RESIDENTS.items():
            command = self._command(name, module)
            out[name] = {
                "kind": kind, "memory_gb": memory, "base_url": self.url(name),
                "driver": {"type": "process", "command": command},
                "ready": {"url": self.url(name) + health, "status": 200},
                "warmup": False, "start_timeout_s": 60, "stall_timeout_s": 60, "stop_timeout_s": 5,
                "swap_seconds": self.load_seconds + 1.5, "default": name == "sglang",
                "exclusive": True,  # the GB10's rule: one model server at a time
            }
        return out

    def _command(self, name: str, module: str) -> list[str]:
        """`python -m hub.sim MODULE --port P ...` wrapped in a few lines of Python that
        - ask Linux to end the stand-in when the demo dies (even by SIGKILL: no orphans),
        - make ComfyUI and TTS, which have no load time of their own, sleep first, so every swap
          takes a visible moment like a real model load (SGLang's stand-in has `load_seconds`),
        - carry the data dir in the command line, so `ps` shows whose stand-in it is."""
        args = [module, "--port", str(self.ports[name])]
        for key, value in _options(name, self.data_dir, self.load_seconds).items():
            args += ["--option", f"{key}={value}"]
        delay = 0.0 if name == "sglang" else round(max(0.0, self.load_seconds) * 0.6, 2)
        code = (f"# sovhub demo stand-in {name} for {self.data_dir}\n"
                "import ctypes, runpy, sys, time\n"
                "try:\n    ctypes.CDLL(None).prctl(1, 15)  # PR_SET_PDEATHSIG: SIGTERM when the demo exits\n"
                "except Exception:\n    pass\n"
                + ("print('loading weights (simulated)', flush=True)\n" if delay else "")
                + f"time.sleep({delay})\nsys.argv = ['hub.sim', *{args!r}]\n"
                "runpy.run_module('hub.sim', run_name='__main__', alter_sys=True)\n")
        return [sys.executable, "-c", code]

    async def start_unmanaged(self) -> None:
        """No scheduler: run every stand-in in this process, all at once."""
        if self.managed:
            return
        for name, (module, *_rest) in RESIDENTS.items():
            mod = importlib.import_module(f"hub.sim.{module}")
            opts = _options(name, self.data_dir, 0.0)
            server = AppServer(mod.create_app(**opts), port=self.ports[name])
            await server.start()
            self._servers.append(server)

    async def stop(self) -> None:
        for server in reversed(self._servers):
            await server.stop()
        self._servers.clear()


class CloudStandIn:
    """The Anthropic stand-in, used when ANTHROPIC_API_KEY is not set."""

    API_KEY = "sk-ant-demo-stand-in"

    def __init__(self) -> None:
        from hub.sim.anthropic import create_app

        self.server = AppServer(create_app(api_key=self.API_KEY, tokens_per_s=60))

    async def start(self) -> str:
        return await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()
