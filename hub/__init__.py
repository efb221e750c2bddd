"""sovhub: the core. Never imports bridges/ (they depend on hub, not the other way)."""


def version() -> str:
    """The installed sovhub version (what MCP clients and `sovhub --version` see)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("sovhub")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"
