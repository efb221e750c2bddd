"""Command line: `sovhub ...`."""
