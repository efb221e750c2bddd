"""Components start after what they need, in the given order otherwise; a cycle is named."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.component import DependencyCycle, order
from hub.core import COMPONENTS, load_component


def comp(name, provides=(), needs=()):
    return SimpleNamespace(__name__=name, PROVIDES=tuple(provides), NEEDS=tuple(needs))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_every_component_starts_after_each_provider_of_its_needs(data):
    n = data.draw(st.integers(1, 8))
    # an acyclic graph: component i may only need keys of components before it in a hidden order
    hidden = data.draw(st.permutations(range(n)))
    comps = []
    for rank, i in enumerate(hidden):
        wants = data.draw(st.lists(st.sampled_from([f"k{j}" for j in hidden[:rank]] or ["absent"]), max_size=3))
        comps.append((i, comp(f"c{i}", provides=[f"k{i}"], needs=wants)))
    given_order = [c for _, c in sorted(comps, key=lambda ic: ic[0])]
    out = order(given_order)
    assert sorted(c.__name__ for c in out) == sorted(c.__name__ for c in given_order)
    pos = {c.__name__: k for k, c in enumerate(out)}
    for c in out:
        for key in c.NEEDS:
            if key != "absent":
                assert pos[f"c{key[1:]}"] < pos[c.__name__]


def test_independent_components_keep_the_given_order_and_a_cycle_is_an_error_naming_both():
    a, b, c = comp("a"), comp("b"), comp("c")
    assert order([c, a, b]) == [c, a, b]
    x, y = comp("x", ["X"], ["Y"]), comp("y", ["Y"], ["X"])
    with pytest.raises(DependencyCycle, match="x -> y -> x"):
        order([x, y])


def test_the_hub_components_order_scheduler_chat_schedules_whatever_order_they_are_listed():
    modules = [load_component(name) for name in reversed(COMPONENTS)]
    assert [m.__name__ for m in order(modules)] == list(COMPONENTS)


def test_bridges_join_the_hub_components_in_one_order_after_what_they_declare_they_need():
    from importlib.metadata import entry_points

    bridges = {ep.name: ep.load() for ep in entry_points(group="sovhub.bridges")}
    modules = [*(bridges[n] for n in ("api", "mcp", "status", "matrix")),
               *(load_component(name) for name in reversed(COMPONENTS))]
    pos = {m.__name__: i for i, m in enumerate(order(modules))}
    assert pos["hub.chat.component"] < pos["bridges.api.component"]
    assert pos["hub.chat.component"] < pos["bridges.matrix.component"]
    assert pos["hub.cron.component"] < pos["bridges.matrix.component"]
    assert pos["hub.gpu.component"] < pos["bridges.mcp.component"]
    assert pos["hub.gpu.component"] < pos["bridges.status.component"]


async def test_an_enabled_component_whose_package_is_missing_stops_the_start_naming_what_to_install(tmp_path):
    from hub.config import load_config
    from hub.core import Hub, MissingDependency
    from hub.registry import SkillRegistry

    started = []

    async def setup(hub):
        started.append(hub)

    wanting = SimpleNamespace(__name__="wanting", TITLE="the frobnicator", REQUIRES={"no_such_pkg_xyz": "frob[all]"},
                              setup=setup)
    switched_off = SimpleNamespace(__name__="off", REQUIRES={"no_such_pkg_abc": "abc"}, setup=setup,
                                   enabled=lambda config: False)
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}}, environ={})
    with pytest.raises(MissingDependency, match=r"the frobnicator needs 'no_such_pkg_xyz'.*pip install 'frob\[all\]'"):
        await Hub.start(config, skills=SkillRegistry(), components=(switched_off, wanting))
    assert started == []
    hub = await Hub.start(config, skills=SkillRegistry(), components=(switched_off,))  # off: not checked
    await hub.stop()
    assert started == []


async def test_a_bridge_stops_after_the_jobs_and_a_request_it_serves_meanwhile_starts_no_job(tmp_path):
    from hub.config import load_config
    from hub.context import Context
    from hub.core import Hub
    from hub.errors import HubError
    from tests.helpers_skills import test_registry

    seen: list[str] = []

    async def setup(hub):
        pass

    async def teardown(hub):  # still serving while the jobs were shut down: a late request
        try:
            await hub.run_skill("echo", {"text": "late"}, Context.new("mcp"))
        except HubError as exc:
            seen.append(str(exc))

    bridge = SimpleNamespace(__name__="bridge", setup=setup, teardown=teardown)
    config = load_config(None, overrides={"storage": {"data_dir": str(tmp_path)}}, environ={})
    hub = await Hub.start(config, skills=test_registry(), components=(bridge,))
    assert (await hub.run_skill("echo", {"text": "early"}, Context.new("mcp"))).text == "early"
    await hub.stop()
    assert seen == ["the hub is stopping: echo was not started"]
