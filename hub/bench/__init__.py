"""Benchmarks: each module has `run(**options) -> dict`, printed as JSON by `sovhub bench NAME`."""
