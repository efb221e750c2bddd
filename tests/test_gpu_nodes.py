"""Several nodes: the `nodes:` config, pure placement, and one scheduler over per-node pools.

Properties (hypothesis, through the multi-node simulator with the same reducers and policy as the
hub): every lease waits only on a node its resident may run on; on every node the loaded residents
keep that pool's exclusivity and memory budget at every step; every pool makes progress (no stall,
nothing left); the default resident has at most one home; the whole run is deterministic.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hub.bench.gpusim.multinode import MultiSimulation, compare_nodes
from hub.bench.gpusim.traces import Session, Step, Trace, gb10_residents, make
from hub.config import check_config, load_config
from hub.errors import ConfigError
from hub.gpu import reducers as R
from hub.gpu.model import Job, Phase, PolicyParams
from hub.gpu.nodes import node_config, with_host
from hub.gpu.placement import default_home, place
from hub.gpu.policy import LOADED, excludes
from tests.gpu_strategies import NAMES, residents

EXAMPLES = int(os.environ.get("SOVHUB_SCHED_EXAMPLES", "60"))
CHECK = settings(max_examples=max(10, EXAMPLES // 2), deadline=None, suppress_health_check=list(HealthCheck))
NODES = ("a", "b", "c")


# -- config --------------------------------------------------------------------------------------

def residents_cfg(**extra) -> dict:
    base = {"sglang": {"kind": "llm", "memory_gb": 90, "base_url": "http://127.0.0.1:30000/v1", "default": True,
                       "ready": {"url": "http://127.0.0.1:30000/health"}, "nodes": ["local", "spark2"]},
            "comfyui": {"kind": "image", "memory_gb": 40, "base_url": "http://127.0.0.1:8188",
                        "ready": {"url": "http://127.0.0.1:8188/system_stats"}, "nodes": ["spark2"]},
            "nodes": {"spark2": {"docker_host": "ssh://hub@spark2", "host": "spark2.lan",
                                 "pool": {"memory_gb": 128, "reserve_gb": 8}}}}
    base.update(extra)
    return base


def cfg_of(residents: dict):
    return load_config(None, overrides={"residents": residents}, environ={}).residents


def test_a_config_without_nodes_is_one_local_pool_as_before():
    cfg = load_config(None, environ={}).residents
    assert not cfg.multi_node and cfg.node_names == ["local"]
    assert all(r.nodes == ["local"] for r in cfg.servers.values())


def test_nodes_derive_each_residents_url_and_engine_per_node():
    cfg = cfg_of(residents_cfg())
    assert cfg.multi_node and cfg.node_names == ["local", "spark2"]
    remote = node_config(cfg, "spark2", default_home_node="local")
    assert set(remote.servers) == {"sglang", "comfyui"}
    assert remote.servers["sglang"].base_url == "http://spark2.lan:30000/v1"
    assert remote.servers["sglang"].ready.url == "http://spark2.lan:30000/health"
    assert remote.servers["sglang"].driver.docker_host == "ssh://hub@spark2"
    assert not remote.servers["sglang"].default and not remote.memory_guard.enabled  # /proc/meminfo is the hub's
    local = node_config(cfg, "local", default_home_node="local")
    assert set(local.servers) == {"sglang"} and local.servers["sglang"].default
    assert local.servers["sglang"].base_url == "http://127.0.0.1:30000/v1"


@pytest.mark.parametrize(("url", "host", "want"), [
    ("http://127.0.0.1:30000/v1", "spark2", "http://spark2:30000/v1"),
    ("http://localhost/x?y=1", "10.0.0.2", "http://10.0.0.2/x?y=1"),
    ("http://127.0.0.1:8188", "fe80::1", "http://[fe80::1]:8188"),
    ("http://127.0.0.1:8188", None, "http://127.0.0.1:8188"),
])
def test_a_residents_url_on_a_node_keeps_scheme_port_and_path(url, host, want):
    assert with_host(url, host) == want


@pytest.mark.parametrize(("change", "says"), [
    ({"comfyui": {"kind": "image", "memory_gb": 40, "base_url": "http://x", "ready": {"url": "http://x"},
                  "nodes": ["spark3"]}}, "comfyui: unknown node 'spark3' (configured: local, spark2)"),
    ({"comfyui": {"kind": "image", "memory_gb": 125, "base_url": "http://x", "ready": {"url": "http://x"},
                  "nodes": ["spark2"]}}, "comfyui: memory_gb 125.0 exceeds the pool budget of node spark2"),
    ({"comfyui": {"kind": "image", "memory_gb": 40, "base_url": "http://x", "ready": {"url": "http://x"},
                  "nodes": ["spark2"], "driver": {"type": "process", "command": ["x"]}}},
     "a process driver runs on the hub's own box"),
    ({"nodes": {"spark2": {"host": "spark2"}}}, "node spark2: needs docker_host"),
    ({"nodes": {"spark2": {"docker_host": "spark2:2375"}}}, "expected unix://PATH, ssh://[user@]host or tcp://"),
    ({"nodes": {"spark2": {"docker_host": "ssh://spark2", "tls": {"ca_cert": "a", "client_cert": "b",
                                                                  "client_key": "c"}}}},
     "tls applies to a tcp:// docker_host only"),
])
def test_bad_node_config_is_refused_with_a_specific_error(change, says):
    with pytest.raises((ConfigError, ValidationError)) as err:
        cfg_of(residents_cfg(**change))
    assert says in str(err.value)


def test_config_check_names_the_unknown_node(tmp_path):
    path = tmp_path / "hub.yaml"
    path.write_text("residents:\n  nodes:\n    spark2: {docker_host: 'tcp://spark2:2376', host: spark2,\n"
                    "      tls: {ca_cert: ca.pem, client_cert: cert.pem, client_key: key.pem}}\n"
                    "  comfyui:\n    kind: image\n    memory_gb: 40\n    base_url: http://127.0.0.1:8188\n"
                    "    ready: {url: 'http://127.0.0.1:8188/system_stats'}\n    nodes: [spark3]\n")
    issues = check_config(path, environ={})
    assert any("unknown node 'spark3'" in i.message for i in issues), issues
    path.write_text(path.read_text().replace("spark3", "spark2"))
    assert check_config(path, environ={}) == []


# -- placement -----------------------------------------------------------------------------------

def pools(phases: dict[str, dict[str, Phase]], specs=None):
    specs = specs or gb10_residents()
    return {n: R.initial_state(specs, PolicyParams(), 0.0, ph) for n, ph in phases.items()}


def test_a_lease_goes_where_its_resident_is_loaded():
    ps = pools({"a": {"sglang": Phase.ready}, "b": {"comfyui": Phase.ready}})
    assert place(ps, "comfyui", ["a", "b"], 10.0, default="sglang").node == "b"
    assert place(ps, "sglang", ["b", "a"], 10.0, default="sglang").node == "a"


def test_otherwise_the_cheapest_swap_wins_and_the_default_stays_loaded():
    ps = pools({"a": {"sglang": Phase.ready}, "b": {}})
    p = place(ps, "tts", ["a", "b"], 10.0, default="sglang")
    assert p.node == "b" and "cheapest swap" in p.reason
    # only node a may run it: then it goes there, evicting the default
    assert place(ps, "tts", ["a"], 10.0, default="sglang").node == "a"


def test_a_down_node_is_never_chosen_and_no_node_left_says_why():
    ps = pools({"a": {"sglang": Phase.ready}, "b": {}})
    assert place(ps, "sglang", ["a", "b"], 1.0, down={"a": "node a stopped answering"}).node == "b"
    p = place(ps, "sglang", ["a"], 1.0, down={"a": "node a stopped answering (refused)"})
    assert p.node is None and p.reason == "no node can run sglang (allowed: a): a: node a stopped answering (refused)"


def test_a_declared_follow_up_keeps_its_place_on_its_node():
    ps = pools({"a": {"sglang": Phase.ready}, "b": {"comfyui": Phase.ready}})
    job = Job("j:0", "sglang", owner="j", then="comfyui", enqueued_at=0.0)
    a = R.dispatch(R.submit(ps["a"], job), "j:0", 1.0)
    ps["a"] = R.finish(a, "j:0", 2.0)  # a reservation for comfyui, on node a
    assert place(ps, "comfyui", ["a", "b"], 3.0, owner="j").node == "a"
    assert place(ps, "comfyui", ["a", "b"], 3.0, owner="other").node == "b"


def test_a_conversations_next_turn_follows_its_resident_not_a_node_that_evicted_it():
    ps = pools({"a": {"sglang": Phase.ready}, "b": {"sglang": Phase.ready}})
    turn = Job("chat:0", "sglang", job_class="interactive", owner="chat", enqueued_at=0.0)
    ps["b"] = R.finish(R.dispatch(R.submit(ps["b"], turn), "chat:0", 1.0), "chat:0", 2.0)  # kept for the next turn
    assert place(ps, "sglang", ["a", "b"], 3.0, owner="chat").node == "b"
    ps["b"] = R.stop_started(ps["b"], "sglang", 3.0)  # b made way for another server meanwhile
    assert place(ps, "sglang", ["a", "b"], 4.0, owner="chat").node == "a"


def test_a_waiting_lease_moves_only_to_a_node_where_its_resident_is_ready_with_room():
    from hub.gpu.placement import moves

    allowed = {"sglang": ["a", "b"], "comfyui": ["a", "b"], "tts": ["a"]}
    ps = pools({"a": {"sglang": Phase.ready}, "b": {"comfyui": Phase.ready}})
    ps["a"] = R.submit(ps["a"], Job("img", "comfyui", enqueued_at=0.0))  # comfyui stopped on a, ready on b
    ps["a"] = R.submit(ps["a"], Job("img2", "comfyui", enqueued_at=1.0))
    assert moves(ps, allowed, 2.0) == [("img", "a", "b")]  # concurrency 1: one fits at once
    assert moves(ps, allowed, 2.0, down={"b": "gone"}) == []
    starting = dict(ps, a=R.load_started(ps["a"], "comfyui", 2.0))
    assert moves(starting, allowed, 3.0) == []  # a load for it is under way: it stays
    ps["b"] = R.submit(ps["b"], Job("img3", "comfyui", enqueued_at=0.5))
    assert moves(ps, allowed, 2.0) == []  # b's comfyui has work waiting already: no room


def test_the_rest_of_a_lease_that_yielded_stays_on_its_node():
    from hub.gpu.placement import moves

    allowed = {"sglang": ["a", "b"], "comfyui": ["a", "b"], "tts": ["a", "b"]}
    ps = pools({"a": {"tts": Phase.ready}, "b": {"tts": Phase.ready}})
    ps["a"] = R.submit(ps["a"], Job("pod", "tts", est_seconds=300, checkpoint_s=15, enqueued_at=0.0))
    ps["a"] = R.dispatch(ps["a"], "pod", 0.0)
    ps["a"] = R.yielded(R.ask_yield(ps["a"], "pod"), "pod", 40.0, "pod+2", 0.1)
    ps["a"] = R.stop_started(ps["a"], "tts", 40.0)
    ps["a"] = R.stopped(ps["a"], "tts", 50.0)
    assert [j.id for j in ps["a"].queue] == ["pod+2"] and ps["b"].phase("tts") == Phase.ready
    assert moves(ps, allowed, 60.0) == []  # its holder talks to a's server: it waits there


def test_the_default_has_one_home_where_it_is_loaded_else_an_idle_node():
    ps = pools({"a": {"comfyui": Phase.ready}, "b": {}})
    assert default_home(ps, "sglang", ["a", "b"]) == "b"
    ps = pools({"a": {}, "b": {"sglang": Phase.starting}})
    assert default_home(ps, "sglang", ["a", "b"]) == "b"
    assert default_home(ps, "sglang", ["a", "b"], down={"b": "gone"}) == "a"


# -- properties over random workloads --------------------------------------------------------------

@st.composite
def setups(draw):
    specs, load, unload = draw(residents())
    nodes = NODES[:draw(st.integers(1, 3))]
    allowed = {n: draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=len(nodes), unique=True))
               for n in NAMES}
    sessions = []
    for i in range(draw(st.integers(1, 20))):
        steps = []
        for _ in range(draw(st.integers(1, 4))):
            est = draw(st.floats(1, 300))
            steps.append(Step(draw(st.sampled_from(NAMES)), est, draw(st.floats(0.5, 3 * est + 1)),
                              draw(st.floats(0, 60)), chunks=draw(st.sampled_from([1, 1, 4]))))
        sessions.append(Session(f"s{i}", draw(st.floats(0, 3600)),
                                draw(st.sampled_from(("interactive", "skill", "scheduled"))), tuple(steps),
                                kind="x", declares_next=draw(st.booleans()),
                                auto=draw(st.booleans()) and all(s.resident == "sglang" for s in steps),
                                cancel_after_s=draw(st.none() | st.floats(1, 600))))
    trace = Trace("random", 0, 3600.0, tuple(sessions), specs, load, unload)
    return trace, nodes, allowed


def checker(trace: Trace, allowed):
    seen = {"homes": 0}
    jobs_of = {f"{s.id}:{k}": st.resident for s in trace.sessions for k, st in enumerate(s.steps)}

    def check(now, states, placed):
        for node, state in states.items():
            loaded = [n for n, r in state.residents.items() if r.phase in LOADED]
            for a in loaded:
                assert not any(excludes(state, a, b) for b in loaded), (now, node, loaded)
            used = sum(state.specs[n].memory_gb for n in loaded)
            assert used <= state.params.memory_gb - state.params.reserve_gb + 1e-9, (now, node, loaded)
            for j in state.running:
                assert state.phase(j.resident) in (Phase.ready, Phase.stopping), (now, node, j)
        for job_id, node in placed.items():
            assert node in allowed[jobs_of[job_id.split("+")[0]]], (job_id, node)  # a resumed lease too
        homes = [n for n, s in states.items() if "sglang" in s.specs and s.specs["sglang"].default]
        assert len(homes) <= 1, homes
        seen["homes"] = max(seen["homes"], len(homes))
    return check


@CHECK
@given(setups())
def test_every_lease_is_placed_on_an_allowed_node_and_every_pool_keeps_its_rules_and_progresses(setup):
    trace, nodes, allowed = setup
    sim = MultiSimulation(trace, nodes, allowed=allowed, check=checker(trace, allowed))
    out = sim.run()
    assert out["stalled"] is None, out["stalled"]
    assert out["jobs_left"] == 0
    assert out["unloads_unserved"] == 0
    assert out["jobs_done"] + out["jobs_failed"] + out["jobs_cancelled"] == out["jobs_submitted"]
    again = MultiSimulation(trace, nodes, allowed=allowed).run()
    assert again == out  # deterministic: same trace, same placements, same figures


def test_two_boxes_on_the_gb10_day_need_fewer_swaps_and_shorter_waits_than_one():
    out = compare_nodes("day", 1, 3, 2, ["sovhub"])
    assert out["ok"]
    one, two = out["table"]
    assert (one["nodes"], two["nodes"]) == (1, 2)
    assert two["swaps_median"] < one["swaps_median"]
    assert two["skill_wait_p95_median_s"] <= one["skill_wait_p95_median_s"]
    assert two["jobs_left"] == 0


def test_one_node_in_the_multi_node_simulator_is_the_single_pool_simulator():
    from hub.bench.gpusim.simulator import simulate

    trace = make("mixed", 4)
    multi = MultiSimulation(trace, ["local"]).run()
    single = simulate(trace, "sovhub")
    for key in ("swaps", "jobs_done", "wait_max_s", "bound_violations", "cloud_turns"):
        assert multi[key] == single[key], key


# -- status surfaces -------------------------------------------------------------------------------

NODES_SNAPSHOT = {"local": {"up": True, "error": None, "endpoint": "unix:///var/run/docker.sock", "host": None,
                            "memory_gb": 128.0, "reserve_gb": 8.0, "state": "ready", "queue": 0,
                            "residents": {"sglang": "ready", "tts": "stopped"}},
                  "spark2": {"up": False, "error": "node spark2 stopped answering (connection refused)",
                             "endpoint": "ssh://hub@spark2", "host": "spark2.lan", "memory_gb": 128.0,
                             "reserve_gb": 8.0, "state": "down", "queue": 0, "residents": {"comfyui": "stopped"}}}


def test_the_status_page_shows_each_node_its_engine_and_why_one_is_down():
    from bridges.status.page import _nodes

    html = _nodes({"gpu": {"nodes": NODES_SNAPSHOT}})
    assert '<section id="nodes">' in html and "ssh://hub@spark2" in html and "spark2.lan" in html
    assert "sglang (ready)" in html and "node spark2 stopped answering (connection refused)" in html
    assert _nodes({"gpu": {}}) == ""  # one node: the page is as before


async def test_sovhub_status_prints_one_line_per_node(tmp_path, capsys):
    from hub.cli.status import show_status
    from hub.store import Store

    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}}, environ={})
    store = await Store.open(config.storage.db_path)
    try:
        await store.kv_set("gpu.snapshot", {"resident": "sglang", "state": "ready", "nodes": NODES_SNAPSHOT})
    finally:
        await store.close()
    await show_status(config, as_json=False)
    out = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert "node local: ready at unix:///var/run/docker.sock, pool 128.0 GB, loaded: sglang (ready)" in out
    assert "node spark2: down at ssh://hub@spark2 (spark2.lan)" in out and "connection refused" in out


def test_the_node_stack_runs_only_the_model_servers_created_for_the_hub_to_start():
    from pathlib import Path

    import yaml

    from hub.doctor.composefile import interpolate

    root = Path(__file__).resolve().parents[1] / "compose"
    node = yaml.safe_load((root / "node.yaml").read_text())
    main = yaml.safe_load(interpolate((root / "compose.yaml").read_text()))
    models = {"sglang", "comfyui", "vllm-omni"}
    assert set(node["services"]) == models | {"fetch-models"}
    for name, svc in node["services"].items():
        assert svc["extends"] == {"file": "compose.yaml", "service": name}
        assert svc["profiles"] == (["models"] if name in models else ["setup"])  # nothing starts with `up`
        if name in models:
            assert main["services"][name]["labels"]["sovhub.resident"] == name
    for v in ("models", "hf-cache", "comfyui-models"):
        assert node["volumes"][v] == main["volumes"][v]
    # the servers listen where MODEL_BIND says; by default (the hub's own box) on 127.0.0.1 as before
    assert "127.0.0.1" in main["services"]["comfyui"]["command"]
    bound = interpolate((root / "compose.yaml").read_text(), {"MODEL_BIND": "0.0.0.0"})
    assert yaml.safe_load(bound)["services"]["comfyui"]["command"][3] == "0.0.0.0"


def test_the_gpu_controls_describe_each_node_and_where_a_resident_is():
    from hub.gpu.surfaces import describe

    text = describe({"resident": "sglang", "state": "ready", "nodes": NODES_SNAPSHOT,
                     "residents": {"sglang": {"phase": "ready", "default": True, "node": "local"},
                                   "comfyui": {"phase": "stopped", "node": "spark2"}}})
    assert "sglang (default): ready on local" in text and "comfyui: stopped on spark2" in text
    assert "Node local: ready, sglang (ready)" in text
    assert "Node spark2: down · node spark2 stopped answering (connection refused)" in text
