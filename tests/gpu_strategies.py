"""Hypothesis strategies shared by the GPU property tests (single pool and several nodes)."""

from __future__ import annotations

from hypothesis import strategies as st

from hub.bench.gpusim.traces import gb10_residents
from hub.gpu.model import ResidentSpec

NAMES = ("sglang", "comfyui", "tts")


@st.composite
def residents(draw):
    """The GB10 (each server exclusive) or a pool where memory alone decides, with true swap times
    that may differ wildly from the configured guesses."""
    exclusive = draw(st.booleans())
    specs = gb10_residents() if exclusive else (
        ResidentSpec("sglang", "llm", memory_gb=90, default=True, concurrency=draw(st.integers(1, 8)),
                     swap_in_s=180, swap_out_s=40),
        ResidentSpec("comfyui", "image", memory_gb=draw(st.sampled_from([20, 40, 64])), swap_in_s=30, swap_out_s=10),
        ResidentSpec("tts", "tts", memory_gb=draw(st.sampled_from([20, 40, 64])), concurrency=2,
                     swap_in_s=45, swap_out_s=10))
    load = {n: draw(st.floats(1, 400)) for n in NAMES}
    unload = {n: draw(st.floats(0.5, 60)) for n in NAMES}
    return specs, load, unload
