"""Shared fixtures: a real Synapse (`synapse`) and a real private dockerd (`dockerd`).

Tests that use them are marked automatically (`synapse`, `docker`), and so are the modules that
start processes or run for many seconds (`slow`, `PROCESS_MODULES`). `pytest --fast` (what
`bash tests/run.sh --fast` runs) does not even import those modules, and deselects every test
marked synapse, docker or slow: the pure and in-process tier.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.testbed import reaper
from tests.testbed.dockerd import TEST_LABEL, DockerEngine
from tests.testbed.synapse import SynapseServer

_SESSION = reaper.mark_session()

# CI runs every property from a fixed seed: a red CI then means a change broke a property, never that a
# random draw found an old counterexample (developer runs stay random and keep exploring). No deadlines
# or too-slow checks there either: CI shares two cores with Synapse and dockerd.
settings.register_profile("ci", derandomize=True, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_sessionfinish(session, exitstatus) -> None:
    """Resident stand-ins outlive their hub on purpose; the test session must not."""
    left = reaper.reap(_SESSION)
    if left:
        print(f"\nstopped {len(left)} process(es) the tests left running")


_FIXTURE_MARKERS = {"synapse": "synapse", "dockerd": "docker", "docker_cleanup": "docker"}

# Modules whose tests start processes (the CLI, stand-ins as processes, ffmpeg/espeak-ng, the demo,
# a hub to SIGKILL) or take many seconds each: all of them are `slow`, outside the fast tier.
PROCESS_MODULES = frozenset({
    "test_api_bench.py", "test_api_waiting.py", "test_bench_startup.py", "test_gpu_controls.py",
    "test_gpu_surfaces.py", "test_chat_bench.py", "test_comfyui_crash.py",
    "test_compose.py", "test_core_cli.py", "test_core_lazy.py", "test_demo.py", "test_doctor.py",
    "test_jobs_keep_who_asked.py", "test_mcp_config.py", "test_mcp_conformance.py", "test_mcp_stdio.py",
    "test_podcast_partial.py", "test_resident_logs.py", "test_gpu_bench.py", "test_gpu_runtime.py",
    "test_gpu_properties.py", "test_cron_faults.py", "test_sim_tts.py", "test_skill_diagnose.py",
    "test_skill_hero_image.py", "test_skill_plugin_package.py", "test_skill_plugins.py", "test_skill_podcast.py",
    "test_skill_podcast_audio.py", "test_status_page.py", "test_testbed_docker.py", "test_testbed_synapse.py",
})


def pytest_addoption(parser) -> None:
    parser.addoption("--fast", action="store_true",
                     help="the fast tier: no Synapse, no dockerd, nothing slow (slow modules are not imported)")


def pytest_ignore_collect(collection_path, config):
    if config.getoption("--fast") and collection_path.name in PROCESS_MODULES:
        return True
    return None


def pytest_collection_modifyitems(config, items) -> None:
    """Mark every test by the test-bed fixtures it uses, directly or through other fixtures."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for fixture, marker in _FIXTURE_MARKERS.items():
            if fixture in names and marker not in item.keywords:
                item.add_marker(getattr(pytest.mark, marker))
        if item.path.name in PROCESS_MODULES and "slow" not in item.keywords:
            item.add_marker(pytest.mark.slow)
    if config.getoption("--fast"):
        keep = [i for i in items if not ({"synapse", "docker", "slow"} & set(i.keywords))]
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
        _fewer_examples(items)


# The fast tier runs each property on a quarter of its examples (at least 25, never more than it asks
# for); CI and `bash tests/run.sh` run every one. Properties set their counts with @settings, which a
# profile cannot scale, so the scaled settings replace the ones hypothesis keeps on the test function.
FAST_EXAMPLES = 0.25


def _fewer_examples(items) -> None:
    done: set[int] = set()
    for item in items:
        fn = getattr(getattr(item, "obj", None), "__func__", getattr(item, "obj", None))
        current = getattr(fn, "_hypothesis_internal_use_settings", None)
        if current is None or id(fn) in done:
            continue
        done.add(id(fn))
        fewer = min(current.max_examples, max(25, int(current.max_examples * FAST_EXAMPLES)))
        fn._hypothesis_internal_use_settings = settings(current, max_examples=fewer)


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
