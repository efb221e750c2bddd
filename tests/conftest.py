"""Shared fixtures: a real Synapse (`synapse`) and a real private dockerd (`dockerd`).

Tests that use them are marked automatically (`synapse`, `docker`), so
`pytest -m "not synapse and not docker"` runs the fast unit tests alone.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.testbed import reaper
from tests.testbed.dockerd import TEST_LABEL, DockerEngine
from tests.testbed.synapse import SynapseServer

_SESSION = reaper.mark_session()


def pytest_sessionfinish(session, exitstatus) -> None:
    """Resident stand-ins outlive their hub on purpose; the test session must not."""
    left = reaper.reap(_SESSION)
    if left:
        print(f"\nstopped {len(left)} process(es) the tests left running")


_FIXTURE_MARKERS = {"synapse": "synapse", "dockerd": "docker", "docker_cleanup": "docker"}


def pytest_collection_modifyitems(config, items) -> None:
    """Mark every test by the test-bed fixtures it uses, directly or through other fixtures."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for fixture, marker in _FIXTURE_MARKERS.items():
            if fixture in names and marker not in item.keywords:
                item.add_marker(getattr(pytest.mark, marker))


@pytest.fixture(scope="session")
def synapse() -> Iterator[SynapseServer]:
    """A running homeserver (server_name `localhost`) with users `.admin`, `.bot` and `.human`."""
    workdir = Path(tempfile.mkdtemp(prefix="sovhub-synapse-"))
    server = SynapseServer(workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def dockerd() -> Iterator[DockerEngine]:
    """A private dockerd with a busybox base image and `.run_python(...)` for host-Python containers."""
    engine = DockerEngine()
    try:
        engine.start()
        yield engine
    finally:
        engine.stop()


@pytest.fixture
def docker_cleanup(dockerd: DockerEngine) -> Iterator[DockerEngine]:
    """Removes the test-labelled containers a test created, even when it fails."""
    before = {c.id for c in dockerd.client.containers.list(all=True, filters={"label": f"{TEST_LABEL}=1"})}
    yield dockerd
    dockerd.remove_test_containers(since=before)
