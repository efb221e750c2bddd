"""sovhub: the core. Never imports bridges/ (they depend on hub, not the other way)."""
