"""Web skills: search through the box's own SearXNG (no third-party query logging)."""
