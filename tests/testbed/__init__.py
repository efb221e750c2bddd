"""The test bed: a real Synapse homeserver and a real Docker engine for integration tests.

`synapse.py` installs Synapse into a cached venv and runs it on an ephemeral port; `dockerd.py` runs a
private dockerd and offers a helper that runs the host's Python inside a container. Both are driven
by session fixtures in `tests/conftest.py`; neither is needed by fast unit tests.
"""

import os
from pathlib import Path


def cache_root() -> Path:
    """Where slow-to-build test assets (the Synapse venv) are kept between runs."""
    root = os.environ.get("SOVHUB_TEST_CACHE") or str(Path.home() / ".cache" / "sovhub-test")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
