"""A small Astro-style blog for the demo's `/podcast` and `/publish --draft` (created once)."""

from __future__ import annotations

from pathlib import Path

WELCOME = """---
title: "Welcome to the box"
description: "What runs on this DGX Spark, and why one model at a time."
pubDate: 2026-11-01
---

# Welcome to the box

This blog runs on a small sovereign AI box. A 119 billion parameter model answers most questions
locally; images and voices take their turn on the same GPU, one model at a time.

When a question needs more, the hub asks Claude, within a daily budget.
"""

CONTENT_CONFIG = """import { defineCollection, z } from "astro:content";

const blog = defineCollection({
  schema: z.object({
    title: z.string(),
    description: z.string(),
    pubDate: z.coerce.date(),
    heroImage: z.string().optional(),
    draft: z.boolean().optional(),
  }),
});

export const collections = { blog };
"""


NOTES = """# EAGLE on the GB10: 38 tokens per second

- Mistral Small 4 119B NVFP4 under SGLang nightly (CUDA 13).
- Triton attention works; FlashInfer has no sm_121 kernels yet.
- With the EAGLE draft head and SGLANG_ENABLE_SPEC_V2=1: 35-41 tokens per second, single stream.
- Without speculative decoding: 12-15 tokens per second.
- Cold start: about four minutes until /health answers.
"""


def seed_notes(data_dir: Path) -> Path:
    path = data_dir / "notes" / "eagle-on-the-gb10.md"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(NOTES)
    return path


def seed_blog(root: Path) -> Path:
    """The blog's root; files that exist already are left alone."""
    files = {
        "package.json": '{"name": "demo-blog", "private": true, "type": "module"}\n',
        "src/content.config.ts": CONTENT_CONFIG,
        "src/content/blog/welcome.md": WELCOME,
    }
    for rel, text in files.items():
        path = root / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return root
