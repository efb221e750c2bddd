"""Two nodes on two real Docker engines: the session's private dockerd is node `local`, a second
private dockerd (own socket and data root, `--live-restore` like a production engine) is node `b`.
The stand-in residents run as containers on each engine (host network; node b's listen on
127.0.0.2, the host its node config names), so placement, per-node swaps, an engine that stops
mid-job and its return are all real."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from hub.config import load_config
from hub.context import Context
from hub.core import Hub
from hub.events import EventBus
from hub.gpu.model import Phase
from hub.gpu.nodes import NodesScheduler
from hub.gpu.runtime import GpuUnavailable
from hub.registry import SkillRegistry
from hub.sim.serve import free_port
from tests.testbed.dockerd import REPO_ROOT, TEST_LABEL, DockerEngine, host_python_mounts
from tests.waiting import wait_until

READY = {"sglang": "/health", "comfyui": "/system_stats", "tts": "/v1/models"}
KIND = {"sglang": "llm", "comfyui": "image", "tts": "tts"}
HOSTS = {"local": "127.0.0.1", "b": "127.0.0.2"}
CTX = Context.new("cli")


def make_certs(d: Path) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made by openssl."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *key, "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "1", "-subj", "/CN=sovhub-test-ca")
    for who, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
                     ("client", "extendedKeyUsage=clientAuth\n")):
        (d / f"{who}.ext").write_text(ext)
        run("req", *key, "-keyout", f"{who}-key.pem", "-out", f"{who}.csr", "-subj", f"/CN={who}")
        run("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-out", f"{who}-cert.pem", "-days", "1", "-extfile", f"{who}.ext")
    return {"ca_cert": str(d / "ca.pem"), "client_cert": str(d / "client-cert.pem"),
            "client_key": str(d / "client-key.pem")}


@pytest.fixture(scope="module")
def engine_b(dockerd, tmp_path_factory):  # started after the session engine (it checks the host prerequisites)
    """Node b's engine: a unix socket, and tcp:// with `--tlsverify` (client certificates) as a
    second box would offer it; `--live-restore` keeps its containers running while it is down."""
    certs = tmp_path_factory.mktemp("tls")
    tls = make_certs(certs)
    port = free_port()
    engine = DockerEngine(extra_args=["--live-restore", "-H", f"tcp://127.0.0.1:{port}", "--tlsverify",
                                      "--tlscacert", tls["ca_cert"], "--tlscert", str(certs / "server-cert.pem"),
                                      "--tlskey", str(certs / "server-key.pem")])
    engine.start()
    engine.tcp_url, engine.tls = f"tcp://127.0.0.1:{port}", tls
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture
def engines(docker_cleanup, engine_b):
    yield docker_cleanup, engine_b
    if engine_b.proc is None or engine_b.proc.poll() is not None:
        engine_b.start()  # a test that stopped it and failed before the restart
    engine_b.remove_test_containers()


def stand_in(name: str, port: int, host: str) -> list[str]:
    argv = ["hub.sim", name, "--host", host, "--port", str(port)]
    delay = 1.0
    if name == "sglang":
        argv += ["--option", "load_seconds=1"]
        delay = 0.0
    if name == "tts":
        argv += ["--option", "engine=tone"]
    code = (f"import time, sys, runpy; print('loading', flush=True); time.sleep({delay}); sys.argv = {argv!r}; "
            "runpy.run_module('hub.sim', run_name='__main__', alter_sys=True)")
    return ["-c", code]


def nodes_config(engines: dict[str, DockerEngine], allowed: dict[str, list[str]], *, tls: bool = False) -> dict:
    """Two nodes; with `tls`, node b's engine is reached over tcp:// with client certificates."""
    node = {"pool": {"memory_gb": 100, "reserve_gb": 0}, "check_interval_s": 0.3, "down_after_s": 1.0}
    cfg: dict = {"memory_guard": {"enabled": False}, "monitor_interval_s": 0.3, "min_residency_s": 0,
                 "nodes": {n: {**node, "docker_host": e.base_url, "host": HOSTS[n]} for n, e in engines.items()}}
    if tls:
        cfg["nodes"]["b"].update(docker_host=engines["b"].tcp_url, tls=engines["b"].tls)
    for name, on in allowed.items():
        port = free_port()
        cname = f"sovhub-test-{name}-{port}"
        for n in on:
            engines[n].client.containers.create(
                engines[n].image, [sys.executable, *stand_in(name, port, HOSTS[n])], name=cname,
                environment={"PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1", "HOME": "/tmp"},
                labels={TEST_LABEL: "1", "sovhub.resident": name}, volumes=host_python_mounts(),
                network_mode="host", init=True, working_dir=str(REPO_ROOT))
        url = f"http://127.0.0.1:{port}"
        cfg[name] = {"kind": KIND[name], "memory_gb": 80, "base_url": url, "default": name == "sglang",
                     "driver": {"type": "docker", "container": cname}, "ready": {"url": url + READY[name]},
                     "nodes": on, "start_timeout_s": 30, "stall_timeout_s": 20, "stop_timeout_s": 3,
                     "swap_seconds": 2}
    return cfg


def scheduler(tmp_path, cfg: dict, events: list) -> NodesScheduler:
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}, "residents": cfg}, environ={})
    bus = EventBus()
    bus.listen("*", lambda e: events.append((e.type, e.data)))
    s = NodesScheduler.from_config(config.residents, state_dir=tmp_path / "residents", bus=bus)
    for node in s.nodes.values():
        node.scheduler.probe_poll_s = 0.1
    return s


def running(engine: DockerEngine) -> list[str]:
    return sorted(c.name.split("-")[2] for c in engine.client.containers.list(
        filters={"label": f"{TEST_LABEL}=1", "name": "sovhub-test-"}))


async def wait_for(predicate, timeout: float = 30.0) -> None:
    """`wait_until` with room for a container to start on a loaded machine."""
    await wait_until(predicate, timeout=timeout, interval=0.1, what="the nodes to reach the expected state")


def phase(s: NodesScheduler, node: str, name: str) -> Phase:
    return s.nodes[node].scheduler.state.phase(name)


async def answers(url: str) -> int:
    async with httpx.AsyncClient(timeout=5) as c:
        return (await c.get(url)).status_code


async def test_leases_go_to_their_node_and_one_node_swaps_while_the_other_keeps_serving_chat(engines, tmp_path):
    a, b = engines
    events: list = []
    cfg = nodes_config({"local": a, "b": b}, {"sglang": ["local", "b"], "comfyui": ["b"], "tts": ["b", "local"]},
                       tls=True)  # node b through tcp:// with TLS client certificates
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}, "residents": cfg}, environ={})
    hub = await Hub.start(config, components=("hub.gpu.component",), skills=SkillRegistry())
    s = hub.gpu  # the component chose the multi-node scheduler for this config
    assert isinstance(s, NodesScheduler)
    hub.bus.listen("*", lambda e: events.append((e.type, e.data)))
    for node in s.nodes.values():
        node.scheduler.probe_poll_s = 0.1
    try:
        await wait_for(lambda: phase(s, "local", "sglang") == Phase.ready)  # the default's home loads it
        async with s.lease("comfyui", job_id="hero", context=CTX, est_seconds=1) as lease:
            assert lease.base_url.startswith("http://127.0.0.2:")  # node b's host
            assert await answers(lease.base_url + READY["comfyui"]) == 200
        seen_during_swap: list[Phase] = []
        done = asyncio.Event()

        async def chat() -> None:
            i = 0
            while not done.is_set():
                async with s.lease("sglang", job_id=f"chat-{i}", context=CTX, job_class="interactive",
                                   est_seconds=0.1) as lease:
                    assert lease.base_url.startswith("http://127.0.0.1:")
                    assert await answers(lease.base_url + READY["sglang"]) == 200
                    seen_during_swap.append(phase(s, "b", "tts"))
                i += 1
                await asyncio.sleep(0.1)  # the behaviour under test: a chat turn every 0.1 s during the swap

        async def podcast() -> None:
            try:
                async with s.lease("tts", job_id="podcast", context=CTX, est_seconds=1) as lease:
                    assert lease.base_url.startswith("http://127.0.0.2:")  # the cheapest swap: b, not the LLM's node
                    assert await answers(lease.base_url + READY["tts"]) == 200
            finally:
                done.set()

        await asyncio.gather(chat(), podcast())
        assert Phase.starting in seen_during_swap  # chat was served on local while b loaded tts
        assert await asyncio.to_thread(running, a) == ["sglang"]
        assert await asyncio.to_thread(running, b) == ["tts"]
        placed = {d["job_id"]: d["node"] for t, d in events if t == "gpu_placed"}
        assert placed["hero"] == "b" and placed["podcast"] == "b" and placed["chat-0"] == "local"
        snap = s.snapshot()
        assert snap.nodes["local"]["residents"]["sglang"] == "ready" and snap.nodes["b"]["residents"]["tts"] == "ready"
        assert snap.residents["tts"]["node"] == "b"
        assert not [w for w in snap.swaps if w["node"] == "local" and w["resident"] == "sglang" and w["phase"] == "out"]
        await s._publish()
        stored = await hub.store.kv_get("gpu.snapshot", {})  # what `sovhub status` reads
        assert stored["nodes"]["b"]["endpoint"] == b.tcp_url and stored["nodes"]["b"]["host"] == "127.0.0.2"
        assert stored["nodes"]["local"]["residents"]["sglang"] == "ready"
    finally:
        await hub.stop()


async def test_an_engine_stopped_mid_job_moves_its_waiting_jobs_and_is_adopted_when_back(engines, tmp_path):
    a, b = engines
    events: list = []
    s = scheduler(tmp_path, nodes_config({"local": a, "b": b}, {"sglang": ["local"], "comfyui": ["b"],
                                                                "tts": ["b", "local"]}), events)
    await s.start()
    runs: Counter = Counter()
    started = asyncio.Event()
    release = asyncio.Event()
    try:
        await wait_for(lambda: phase(s, "local", "sglang") == Phase.ready)

        async def job(job_id: str, resident: str) -> str:
            async with s.lease(resident, job_id=job_id, context=CTX, est_seconds=2) as lease:
                runs[job_id] += 1
                if job_id == "first":
                    started.set()
                    await release.wait()
                return lease.base_url

        first = asyncio.create_task(job("first", "tts"))
        await asyncio.wait_for(started.wait(), 30)
        second = asyncio.create_task(job("second", "tts"))  # waits on b behind the first (concurrency 1)
        image = asyncio.create_task(job("image", "comfyui"))  # b only
        await wait_for(lambda: len(s.nodes["b"].scheduler.state.queue) == 2)
        tts_b = b.client.containers.get(s.nodes["b"].scheduler.drivers["tts"].container_name)
        started_at = tts_b.attrs["State"]["StartedAt"]

        b.proc.send_signal(signal.SIGTERM)  # the engine goes away; with live-restore its containers keep running
        await asyncio.to_thread(b.proc.wait, 20)
        b.client.close()

        with pytest.raises(GpuUnavailable) as err:
            await asyncio.wait_for(image, 30)
        assert str(err.value).startswith("no node can run comfyui (allowed: b): b: node b stopped answering")
        assert (await asyncio.wait_for(second, 60)).startswith("http://127.0.0.1:")  # re-placed on local
        revoked = [d for t, d in events if t == "gpu_lease_revoked"]
        assert [d["job_id"] for d in revoked] == ["first"] and "node b stopped answering" in revoked[0]["error"]
        release.set()
        await asyncio.wait_for(first, 10)
        assert runs == Counter({"first": 1, "second": 1})  # nothing ran twice, the image never ran
        assert s.snapshot().nodes["b"]["up"] is False

        await asyncio.to_thread(b.start)  # the engine is back: the running tts container is adopted
        await wait_for(lambda: s.nodes["b"].scheduler.down is None and phase(s, "b", "tts") == Phase.ready)
        tts_b = b.client.containers.get(tts_b.name)
        assert tts_b.status == "running" and tts_b.attrs["State"]["StartedAt"] == started_at
        assert [d["adopted"] for t, d in events if t == "gpu_node_up"] == [["tts"]]
        async with s.lease("comfyui", job_id="image-again", context=CTX, est_seconds=1) as lease:
            assert lease.base_url.startswith("http://127.0.0.2:")
    finally:
        release.set()
        await s.close()


async def test_a_start_that_fails_because_the_engine_is_gone_moves_the_job_instead_of_failing_it(engines, tmp_path):
    a, b = engines
    events: list = []
    cfg = nodes_config({"local": a, "b": b}, {"sglang": ["local"], "tts": ["b", "local"]})
    cfg["nodes"]["b"]["down_after_s"] = 600  # the watcher would not notice for ten minutes
    s = scheduler(tmp_path, cfg, events)
    await s.start()
    try:
        await wait_for(lambda: phase(s, "local", "sglang") == Phase.ready)
        b.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(b.proc.wait, 20)
        b.client.close()
        runs = []
        async with s.lease("tts", job_id="podcast", context=CTX, est_seconds=1) as lease:
            runs.append(lease.base_url)
        assert len(runs) == 1 and runs[0].startswith("http://127.0.0.1:")  # ran once, on local
        placed = [d["node"] for t, d in events if t == "gpu_placed" and d["job_id"] == "podcast"]
        assert placed == ["b", "local"]  # b was the cheaper swap; its start found no engine
        (failed,) = [d for t, d in events if t == "gpu_start_failed"]
        assert failed["resident"] == "tts" and "Docker is not reachable" in failed["error"]
        assert s.nodes["b"].scheduler.down.startswith("node b stopped answering")
        moved = [d["moved_from"] for t, d in events if t == "gpu_placed" and d["node"] == "local"]
        assert moved == [["b"]]
        finished = [d for t, d in events if t == "gpu_finished" and d["job_id"] == "podcast"]
        assert [d["ok"] for d in finished] == [True]
    finally:
        await s.close()


@pytest.mark.slow
async def test_a_waiting_lease_handed_back_for_a_move_leaves_nothing_on_its_old_node(tmp_path):
    """`withdraw` (what a move uses): the caller gets `LeaseMoved` naming the node, the old node's
    queue is empty, and a lease already granted is never withdrawn. A real server process that
    never becomes ready keeps the lease waiting."""
    from hub.gpu.drivers import ProcessDriver
    from hub.gpu.model import ResidentSpec
    from hub.gpu.runtime import LeaseMoved, ResidentRuntime, ResidentScheduler

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    s = ResidentScheduler([ResidentSpec("x", memory_gb=1, swap_in_s=1)],
                          {"x": ResidentRuntime(url, url + "/health", start_timeout_s=60, stall_timeout_s=60)},
                          {"x": ProcessDriver("x", [sys.executable, "-c", "import time; time.sleep(60)"],
                                              state_dir=tmp_path)})
    await s.start()
    try:
        async def wait_lease() -> None:
            async with s.lease("x", job_id="img", context=CTX):
                raise AssertionError("never granted: the server never answers")

        task = asyncio.create_task(wait_lease())
        await wait_for(lambda: len(s.state.queue) == 1)
        (job,) = s.state.queue
        assert s.withdraw(job.id, LeaseMoved("moved to b", "b"))
        with pytest.raises(LeaseMoved) as err:
            await task
        assert err.value.to == "b" and s.state.queue == ()
        assert not s.withdraw(job.id, LeaseMoved("again", "b"))  # not waiting any more
    finally:
        await s.close()
        await s.drivers["x"].stop(2)


@pytest.mark.slow
async def test_a_lease_waiting_behind_a_busy_node_moves_to_the_node_where_its_resident_came_up(tmp_path):
    """Two pools (stand-in servers as processes, one scheduler each): `c` may run on both. A lease
    for c waits on node a behind a long job; the operator loads c on node b; the lease moves there
    and is granted on b (its URL), and node a never loads c."""
    from hub.gpu.drivers import ProcessDriver
    from hub.gpu.model import PolicyParams, ResidentSpec
    from hub.gpu.nodes import Node
    from hub.gpu.runtime import ResidentRuntime, ResidentScheduler

    events: list = []
    bus = EventBus()
    bus.listen("*", lambda e: events.append((e.type, e.data)))
    nodes, urls = [], {}
    for n, own in (("a", "x"), ("b", "y")):
        specs, runtimes, drivers = [], {}, {}
        for name in (own, "c"):
            port = free_port()
            urls[(n, name)] = url = f"http://127.0.0.1:{port}"
            specs.append(ResidentSpec(name, memory_gb=1, exclusive=True, swap_in_s=1, swap_out_s=1,
                                      concurrency=2 if name == "c" else 1))
            runtimes[name] = ResidentRuntime(url, url + "/system_stats", warmup=False, start_timeout_s=30,
                                             stop_timeout_s=3)
            drivers[name] = ProcessDriver(f"{name}-{n}", [sys.executable, "-m", "hub.sim", "comfyui", "--port",
                                                         str(port)], state_dir=tmp_path / n)
        sched = ResidentScheduler(specs, runtimes, drivers, params=PolicyParams(min_residency_s=0), bus=bus,
                                  probe_poll_s=0.1, monitor_interval_s=0.3)
        nodes.append(Node(n, sched, watched=False))
    s = NodesScheduler(nodes, {"x": ["a"], "y": ["b"], "c": ["a", "b"]}, bus=bus)
    await s.start()
    hold_a, hold_b = asyncio.Event(), asyncio.Event()
    try:
        async def hold(resident: str, job_id: str, est: float, release: asyncio.Event) -> None:
            async with s.lease(resident, job_id=job_id, context=CTX, est_seconds=est):
                await release.wait()

        busy = [asyncio.create_task(hold("y", "long-b", 200, hold_b)),
                asyncio.create_task(hold("x", "long-a", 100, hold_a))]
        await wait_for(lambda: phase(s, "a", "x") == Phase.ready and phase(s, "b", "y") == Phase.ready
                       and s.nodes["a"].scheduler.state.running and s.nodes["b"].scheduler.state.running)

        async def image() -> str:
            async with s.lease("c", job_id="image", context=CTX, est_seconds=5) as lease:
                return lease.base_url

        task = asyncio.create_task(image())
        await wait_for(lambda: any(j.owner == "image" for j in s.nodes["a"].scheduler.state.queue))  # a drains sooner
        hold_b.set()  # b's long job ends; then the operator asks for c on b
        await busy[0]
        assert (await s.control("load", "c@b")).ok
        assert await asyncio.wait_for(task, 30) == urls[("b", "c")]
        placed = [(d["node"], d["moved_from"]) for t, d in events if t == "gpu_placed" and d["job_id"] == "image"]
        assert placed == [("a", []), ("b", ["a"])]
        assert phase(s, "a", "c") == Phase.stopped and phase(s, "a", "x") == Phase.ready  # a never swapped for it
    finally:
        hold_a.set()
        hold_b.set()
        await s.close()
        for node in s.nodes.values():
            for d in node.scheduler.drivers.values():
                await d.stop(2)
