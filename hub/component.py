"""Components declare what they provide and what they need; the hub starts them in that order.

A component is a module (or object) with `async setup(hub)` and `async teardown(hub)`, and two
optional declarations, `PROVIDES` and `NEEDS`: tuples of typed keys (`Key[T]`, in the spirit of
Home Assistant's `HassKey`): the key names a service and carries its type, so `hub.get(CHAT)` is
typed where `hub.extras["chat"]` was `Any`. `order(...)` is pure: a need that nothing in the set
provides is not an error (the component finds it absent and degrades, e.g. chat without a GPU
scheduler), a cycle is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


class Key(str, Generic[T]):
    """A typed name for something a component provides (the string is its `hub.extras` key)."""

    __slots__ = ()


@runtime_checkable
class Component(Protocol):
    async def setup(self, hub: Any) -> None: ...

    async def teardown(self, hub: Any) -> None: ...


GPU: Key[Any] = Key("gpu")            # hub.gpu: the resident-model scheduler (hub/gpu)
CHAT: Key[Any] = Key("chat")          # hub.chat: the chat service (hub/chat)
SCHEDULES: Key[Any] = Key("schedules")  # hub.cron: the timetables (hub/cron)


class DependencyCycle(ValueError):
    pass


def provides(component: Any) -> tuple[str, ...]:
    return tuple(getattr(component, "PROVIDES", ()))


def needs(component: Any) -> tuple[str, ...]:
    return tuple(getattr(component, "NEEDS", ()))


def order(components: Sequence[Any]) -> list[Any]:
    """Each component after every component that provides one of its needs; otherwise the given
    order is kept (stable), so two independent components start as listed."""
    by_key: dict[str, list[int]] = {}
    for i, c in enumerate(components):
        for key in provides(c):
            by_key.setdefault(key, []).append(i)
    after = {i: sorted({j for key in needs(c) for j in by_key.get(key, ()) if j != i})
             for i, c in enumerate(components)}
    done: list[int] = []
    state: dict[int, str] = {}

    def visit(i: int, path: tuple[int, ...]) -> None:
        if state.get(i) == "done":
            return
        if state.get(i) == "visiting":
            names = " -> ".join(_name(components[k]) for k in (*path, i))
            raise DependencyCycle(f"components need each other: {names}")
        state[i] = "visiting"
        for j in after[i]:
            visit(j, (*path, i))
        state[i] = "done"
        done.append(i)

    for i in range(len(components)):
        visit(i, ())
    return [components[i] for i in done]


def _name(component: Any) -> str:
    return getattr(component, "__name__", None) or type(component).__name__
