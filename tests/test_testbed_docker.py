"""The Docker test bed: a host-Python container serves HTTP on 127.0.0.1 and stops promptly."""

from __future__ import annotations

import time

import httpx

from hub.sim.serve import free_port
from tests.testbed.dockerd import TEST_LABEL
from tests.waiting import wait_until_sync


def _wait_http(url: str, timeout: float = 20.0) -> httpx.Response:
    return wait_until_sync(lambda: httpx.get(url, timeout=1), timeout=timeout, what=f"an answer from {url}",
                           ignoring=(httpx.HTTPError,))


def test_base_image_was_imported_without_a_registry(dockerd):
    image = dockerd.client.images.get(dockerd.image)
    out = dockerd.client.containers.run(dockerd.image, ["/bin/busybox", "echo", "hi"], remove=True,
                                        network_mode="host")
    assert image.id and out.strip() == b"hi"


def test_host_python_container_serves_http_on_loopback_and_stops_quickly(docker_cleanup):
    port = free_port()
    container = docker_cleanup.run_python(
        f"http-{port}", ["-m", "http.server", str(port), "--bind", "127.0.0.1"])
    assert container.labels[TEST_LABEL] == "1"
    resp = _wait_http(f"http://127.0.0.1:{port}/pyproject.toml")
    assert resp.status_code == 200 and "sovhub" in resp.text  # the repo root is the working dir

    started = time.monotonic()
    container.stop(timeout=10)
    elapsed = time.monotonic() - started
    container.reload()
    assert container.status == "exited"
    assert elapsed < 5, f"stop took {elapsed:.1f}s: PID 1 ignored SIGTERM"


def test_container_runs_repo_modules_with_the_venv(docker_cleanup):
    container = docker_cleanup.run_python(
        f"mod-{free_port()}", ["-c", "import hub.sim.serve, docker, sys; print(sys.prefix)"])
    assert container.wait(timeout=60)["StatusCode"] == 0
    assert container.logs().decode().strip() == __import__("sys").prefix
