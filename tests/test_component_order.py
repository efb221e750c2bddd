"""Components start after what they need, in the given order otherwise; a cycle is named."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.component import DependencyCycle, order
from hub.core import COMPONENTS, _import_component


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
    modules = [_import_component(name) for name in reversed(COMPONENTS)]
    assert [m.__name__ for m in order(modules)] == list(COMPONENTS)
