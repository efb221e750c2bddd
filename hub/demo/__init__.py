"""`sovhub demo`: the hub on a simulated GB10 with a terminal chat (see `hub/demo/DESIGN.md`)."""

from hub.demo.app import Demo, DemoOptions, run_demo

__all__ = ["Demo", "DemoOptions", "run_demo"]
