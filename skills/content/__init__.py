"""Content pipelines: hero images (ComfyUI), podcasts (TTS) and publishing to an Astro blog."""
